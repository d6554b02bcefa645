// The Durable Streams server conformance suite (@durable-streams/server-conformance-tests, run
// by vitest) against one target: a Herald node given by DS_CONFORMANCE_<TARGET> (its /ds/ base
// URL), or the reference server @durable-streams/server, started here in the vitest worker.
// conformance.test.ts runs the three targets side by side and compares their counts.
import { afterAll, beforeAll, describe } from 'vitest';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';

/** The long-poll timeout both Herald and the reference get (the suite waits for 204s). */
export const LONG_POLL_MS = 500;

export function conformance(target) {
  describe(target, () => {
    const config = { baseUrl: '', longPollTimeoutMs: 20_000 };
    let server;
    beforeAll(async () => {
      if (target === 'reference') {
        const { DurableStreamTestServer } = await import('@durable-streams/server');
        server = new DurableStreamTestServer({ port: 0, host: '127.0.0.1', longPollTimeout: LONG_POLL_MS });
        await server.start();
        config.baseUrl = server.url;
      } else {
        const url = process.env[`DS_CONFORMANCE_${target.toUpperCase().replace(/-/g, '_')}`];
        if (url === undefined) throw new Error(`no URL for ${target}`);
        config.baseUrl = url;
      }
    });
    afterAll(async () => {
      await server?.stop();
    });
    runConformanceTests(config);
  });
}
