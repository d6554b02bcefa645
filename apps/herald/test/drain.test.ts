/** Graceful SIGTERM of the real `herald serve` process (PROTOCOL.md section 1). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runHerald } from '../../../test/support/cli.ts';
import { JWT_SECRET, API_KEY, token, until } from '../../../test/support/hub.ts';
import { RawSse, streamQuery } from '../../../test/support/sse.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

describe('herald serve on SIGTERM', () => {
  it('tells WebSocket (1001) and SSE (reconnect: true) clients to go, answers /readyz 503, exits 0', async () => {
    const child = runHerald(['serve'], {
      PORT: '0',
      HOST: '127.0.0.1',
      HERALD_API_KEY: API_KEY,
      HERALD_JWT_SECRET: JWT_SECRET,
      HERALD_LOG_LEVEL: 'info',
    });
    try {
      const base = await child.listening;
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const alice = await token();
      const wsUrl = `${base.replace('http', 'ws')}/ws`;
      const ws = await WsTestClient.connect(wsUrl, alice);
      await ws.ok('subscribe', { channel: 'drain:1' });
      const sse = await RawSse.open(`${base}/sse?${streamQuery(['drain:1'], { token: alice })}`);
      await until(() => sse.events.length >= 1, 'herald.connected');
      // A client that stopped reading: the drain waits (bounded) for its goodbye, as for any slow client.
      const stalled = await WsTestClient.connect(wsUrl, alice);
      const stalledSocket = (stalled.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      stalledSocket.pause();

      child.child.kill('SIGTERM');
      await until(() => ws.closeCode !== undefined, 'the WebSocket to be closed', 15_000);
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 503, '/readyz answers 503 while draining');
      assert.equal(((await ready.json()) as any).error.code, 'not_ready');
      assert.equal(ws.closeCode, 1001);
      assert.deepEqual(ws.pushes.at(-1), { push: 'disconnect', code: 1001, reason: 'hub going away', reconnect: true });
      await sse.ended;
      const goodbye = sse.named('herald.disconnect');
      assert.equal(goodbye.length, 1);
      assert.equal(goodbye[0].reconnect, true);
      assert.equal(goodbye[0].code, 1001);
      stalledSocket.resume();
      assert.equal(await child.exited, 0);
      assert.match(child.stdout(), /"msg":"draining"/);
      await stalled.closed;
    } finally {
      child.kill();
    }
  });
});
