/**
 * SIGTERM with Socket.IO WebSocket clients that never complete their close (issue 14, item 3):
 * python-socketio's sync client, or any client whose network dropped. The drain must cut every
 * transport's leftovers and let `herald serve` exit 0 within its deadline; before the fix it waited
 * for the Engine.IO WebSocket close handshake until its 30 s safety timer ended it with exit 1.
 * Runs the built binary (npm run build), as a user would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runHerald } from '../../../test/support/cli.ts';
import { API_KEY, JWT_SECRET, token, until } from '../../../test/support/hub.ts';
import { Opcode, RawWs, textFrame } from '../../../test/reliability/support/raw-ws.ts';

/** An Engine.IO v4 WebSocket with a Socket.IO session, spoken over a raw socket that answers nothing by itself. */
async function rawSocketIo(port: number, jwt: string): Promise<RawWs> {
  const ws = await RawWs.open(port, { path: '/socket.io/?EIO=4&transport=websocket' });
  await ws.waitFor((f) => f.opcode === Opcode.Text && f.payload.toString().startsWith('0{'));
  ws.write(textFrame(`40${JSON.stringify({ token: jwt })}`));
  await ws.waitFor((f) => f.opcode === Opcode.Text && f.payload.toString().startsWith('40{'));
  return ws;
}

describe('herald serve on SIGTERM with Socket.IO clients', () => {
  it('exits 0 although WebSocket clients never answer the close, or stopped reading', { timeout: 60_000 }, async () => {
    const herald = runHerald(['serve'], {
      PORT: '0',
      HOST: '127.0.0.1',
      HERALD_API_KEY: API_KEY,
      HERALD_JWT_SECRET: JWT_SECRET,
      HERALD_LOG_LEVEL: 'info',
    });
    try {
      const base = await herald.listening;
      const port = Number(new URL(base).port);
      const jwt = await token();
      // Never answers a close frame: the close handshake cannot complete.
      const silent = await rawSocketIo(port, jwt);
      // Stopped reading altogether: nothing the hub writes is taken.
      const stalled = await rawSocketIo(port, jwt);
      stalled.socket.pause();
      const subscribe = `42${JSON.stringify(['subscribe', { channel: 'drain:sio' }])}`;
      silent.write(textFrame(subscribe));
      await until(
        () => silent.frames.some((f) => f.opcode === Opcode.Text && f.payload.toString().startsWith('42')),
        'a subscribe to go through',
      );

      herald.child.kill('SIGTERM');
      const code = await herald.exited;
      assert.equal(code, 0, `exit code 0, output:\n${herald.stdout()}${herald.stderr()}`);
      assert.match(herald.stdout(), /"msg":"stopped"/);
      // A paused socket sees its end only once it reads again.
      stalled.socket.resume();
      await Promise.all([silent.ended, stalled.ended]);
      assert.ok(
        silent.frames.some((f) => f.opcode === Opcode.Close),
        'the silent client was told to go before it was cut',
      );
    } finally {
      herald.kill();
    }
  });
});
