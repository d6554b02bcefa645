/**
 * A real browser: Chromium loads pusher-js's own web bundle from a page the hub serves, with the
 * app's auth endpoint (signed by the `pusher` SDK) on the same origin, and subscribes to public,
 * private and presence channels; directly over WebSocket, and behind a proxy that refuses
 * WebSocket, where pusher-js falls back to xhr_streaming (default transports) or xhr_polling.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { HttpProxy } from '../../../test/support/http-proxy.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, requireService } from '../../../test/support/services.ts';
import { APP, TestClient, serverSdk, startPusherHub, type PusherHub } from './support.ts';

const bundle = readFileSync(
  join(dirname(createRequire(import.meta.url).resolve('pusher-js/package.json')), 'dist/web/pusher.min.js'),
);

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script src="/pusher.min.js"></script>
<script>
  window.received = [];
  const params = new URLSearchParams(location.search);
  const transports = params.get('transports');
  const port = Number(location.port);
  const pusher = new Pusher(${JSON.stringify(APP.key)}, {
    cluster: 'local',
    wsHost: location.hostname, wsPort: port,
    httpHost: location.hostname, httpPort: port,
    forceTLS: false,
    enableStats: false,
    ...(transports ? { enabledTransports: transports.split(',') } : {}),
    channelAuthorization: { endpoint: '/pusher-auth', transport: 'ajax', params: { user: params.get('user') } },
  });
  window.pusher = pusher;
  for (const name of ['news', 'private-inbox', 'presence-lobby']) {
    const channel = pusher.subscribe(name);
    channel.bind_global((event, data) => window.received.push({ channel: name, event, data }));
  }
</script>`;

describe('pusher-js in Chromium', () => {
  let hub: PusherHub;
  let browser: Browser | undefined;
  const proxies: HttpProxy[] = [];

  before(async () => {
    hub = await startPusherHub({
      routes: async (req, res, url) => {
        if (url.pathname === '/page') {
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
          return true;
        }
        if (url.pathname === '/pusher.min.js') {
          res.writeHead(200, { 'Content-Type': 'application/javascript' }).end(bundle);
          return true;
        }
        if (url.pathname === '/pusher-auth' && req.method === 'POST') {
          // The app's auth endpoint, as a Laravel or Express app would have it.
          let body = '';
          for await (const chunk of req) body += chunk;
          const form = new URLSearchParams(body);
          const channel = form.get('channel_name') ?? '';
          const member = channel.startsWith('presence-') ? { user_id: form.get('user') ?? 'anon' } : undefined;
          const auth = serverSdk(hub.port).authorizeChannel(form.get('socket_id') ?? '', channel, member);
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(auth));
          return true;
        }
        return false;
      },
    });
  });
  after(async () => {
    await browser?.close();
    for (const proxy of proxies) await proxy.close();
    await hub.close();
  });

  async function run(t: TestContext, base: string, user: string, transports?: string): Promise<string> {
    browser ??= await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    const page = await browser.newPage();
    try {
      const query = new URLSearchParams({ user, ...(transports === undefined ? {} : { transports }) });
      await page.goto(`${base}/page?${query}`);
      const subscribed = (name: string) =>
        page.waitForFunction(
          (n) =>
            (window as any).received.some((r: any) => r.channel === n && r.event === 'pusher:subscription_succeeded'),
          name,
          { timeout: 30_000 },
        );
      await Promise.all(['news', 'private-inbox', 'presence-lobby'].map(subscribed));
      const transport = await page.evaluate(() => (window as any).pusher.connection.connection.transport.name);
      const sdk = serverSdk(hub.port);
      await sdk.trigger(['news', 'private-inbox'], 'hello', { to: user });
      await page.waitForFunction(
        () => (window as any).received.filter((r: any) => r.event === 'hello').length === 2,
        undefined,
        { timeout: 15_000 },
      );
      const hellos = await page.evaluate(() => (window as any).received.filter((r: any) => r.event === 'hello'));
      assert.deepEqual(hellos.map((h: any) => [h.channel, h.data]).sort(), [
        ['news', { to: user }],
        ['private-inbox', { to: user }],
      ]);
      // A Node client in the same presence channel sees the browser as a member, and its whispers.
      const peer = new TestClient(hub.port, { member: { user_id: `peer-of-${user}` } });
      try {
        const members = await peer.subscribe('presence-lobby');
        assert.ok(Object.keys(members.members).includes(user), `${user} is a member`);
        await page.evaluate(() =>
          (window as any).pusher.channel('presence-lobby').trigger('client-hi', { from: 'browser' }),
        );
        await peer.waitFor('presence-lobby', 'client-hi');
      } finally {
        peer.close();
      }
      void t;
      return transport;
    } finally {
      await page.close();
    }
  }

  it('over WebSocket, straight to the hub', async (t) => {
    if (!(await requireService(t, 'chromium'))) return;
    assert.equal(await run(t, hub.url, 'ws-user'), 'ws');
  });

  it('behind a proxy that refuses WebSocket, with the default transports: xhr_streaming', async (t) => {
    if (!(await requireService(t, 'chromium'))) return;
    const proxy = new HttpProxy(hub.port, { refuseUpgrades: true });
    proxies.push(proxy);
    await proxy.listen();
    assert.equal(await run(t, proxy.url, 'streaming-user'), 'xhr_streaming');
    assert.ok(proxy.refusedUpgrades >= 1);
  });

  it('behind a proxy that refuses WebSocket, on xhr_polling', async (t) => {
    if (!(await requireService(t, 'chromium'))) return;
    const proxy = new HttpProxy(hub.port, { refuseUpgrades: true });
    proxies.push(proxy);
    await proxy.listen();
    assert.equal(await run(t, proxy.url, 'polling-user', 'xhr_polling'), 'xhr_polling');
  });
});
