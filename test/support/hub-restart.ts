/**
 * Test support: a hub on a chosen port, and restarting one in place (close, then a new
 * HeraldServer on the same port), as a crashed or redeployed node looks to its clients. With the
 * memory broker the new hub has no history and new epochs, so clients must hear recovered: false.
 */
import { HeraldServer, type HeraldOptions } from '@herald/server';
import { API_KEY, JWT_SECRET, type TestHub } from './hub.ts';

export async function startHubOn(port: number, options: Partial<HeraldOptions> = {}): Promise<TestHub> {
  // The old listener may take a moment to let go of the port: a few bounded attempts.
  for (let attempt = 0; ; attempt++) {
    const server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, ...options });
    try {
      const address = await server.listen(port, '127.0.0.1');
      return {
        server,
        url: `http://127.0.0.1:${address.port}`,
        wsUrl: `ws://127.0.0.1:${address.port}/ws`,
        port: address.port,
        close: () => server.close(),
      };
    } catch (error) {
      await server.close().catch(() => undefined);
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 50) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Closes `hub` (clients are told 1001 / herald.disconnect) and starts a fresh one on its port. */
export async function restartHub(hub: TestHub, options: Partial<HeraldOptions> = {}): Promise<TestHub> {
  await hub.close();
  return startHubOn(hub.port, options);
}
