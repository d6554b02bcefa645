/**
 * Slowloris: clients that send their request head, body or a WebSocket frame one byte at a time
 * must lose their socket to a timeout while everyone else carries on. The policy:
 *
 * - HTTP: `headersTimeout` (10 s) for the request head, `requestTimeout` (30 s) for the whole
 *   request, enforced every second (connectionsCheckingInterval), answered 408; idle keep-alive
 *   sockets go after `keepAliveTimeout` (5 s).
 * - WebSocket before `connect`: the connect deadline (`connectTimeoutMs`, 10 s), close 4006.
 * - WebSocket after `connect`: a peer in the middle of a frame cannot answer a ping (control
 *   frames cannot interleave inside a frame), so dead-peer detection ends it within two ping
 *   intervals (`pingIntervalSeconds`, HERALD_PING_INTERVAL, default 25 s: at most 50 s). A peer
 *   that sends a fragmented message slowly and does answer pings holds one slot like any idle
 *   client, at most maxPayload bytes and 1024 fragments (then 1008); the per-address cap bounds
 *   how many such slots one address holds.
 *
 * The test runs the same hub with shorter timeouts so that it finishes in seconds; the figures
 * state the measured times, and docs/reliability.md the production ones.
 */
import assert from 'node:assert/strict';
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { API_KEY, startHub, token, type TestHub } from '../support/hub.ts';
import { pool, recordFigures } from './support/figures.ts';
import { tcp, whenClosed } from './support/http-raw.ts';
import { Opcode, RawWs, textFrame } from './support/raw-ws.ts';
import { Witness } from './support/witness.ts';

const HEADERS_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 4_000;
const PING_INTERVAL_S = 1;
const CONNECT_TIMEOUT_MS = 2_000;
const DRIBBLERS = 200;

/** Writes `text` one byte every `everyMs` until the socket closes or `maxMs` passes. */
function dribble(socket: Socket, text: string | Buffer, everyMs: number, maxMs = 30_000): void {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  let i = 0;
  const started = Date.now();
  const timer = setInterval(() => {
    if (socket.destroyed || i >= bytes.length || Date.now() - started > maxMs) {
      clearInterval(timer);
      return;
    }
    socket.write(bytes.subarray(i, ++i));
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

const stats = (xs: number[]): { min: number; median: number; max: number } => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0] ?? 0, median: s[Math.floor(s.length / 2)] ?? 0, max: s[s.length - 1] ?? 0 };
};

describe('slowloris', () => {
  let hub: TestHub;
  let witness: Witness;
  before(async () => {
    hub = await startHub({ pingIntervalSeconds: PING_INTERVAL_S, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    const http = hub.server.httpServer as HttpServer;
    http.headersTimeout = HEADERS_TIMEOUT_MS;
    http.requestTimeout = REQUEST_TIMEOUT_MS;
    witness = await Witness.start(hub);
  });
  after(async () => {
    witness.abort();
    await hub.close();
  });

  it(`closes ${DRIBBLERS} request heads sent one byte at a time (408 after headersTimeout)`, async (t) => {
    const closes = await pool(
      Array.from({ length: DRIBBLERS }, (_, i) => i),
      DRIBBLERS,
      async (i) => {
        const socket = await tcp(hub.port, `127.0.0.${10 + (i % 5)}`);
        const closed = whenClosed(socket);
        dribble(socket, `GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(400)}\r\n\r\n`, 100);
        return closed;
      },
    );
    const times = closes.map((c) => c.afterMs);
    const answered408 = closes.filter((c) => c.head.startsWith('HTTP/1.1 408')).length;
    recordFigures(t, 'slowloris-headers', {
      connections: DRIBBLERS,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      closedAfterMs: stats(times),
      answered408,
    });
    assert.equal(closes.length, DRIBBLERS);
    // Bounded, not timed: every one of them closed, none later than the timeout plus the 1 s check plus slack.
    assert.ok(Math.max(...times) < HEADERS_TIMEOUT_MS + 5_000, `closed after ${Math.max(...times)} ms`);
  });

  it('closes connections that send nothing at all', async (t) => {
    const closes = await Promise.all(
      Array.from({ length: 50 }, async () => whenClosed(await tcp(hub.port, '127.0.0.20'))),
    );
    const times = closes.map((c) => c.afterMs);
    recordFigures(t, 'slowloris-silent', { connections: 50, closedAfterMs: stats(times) });
    assert.ok(Math.max(...times) < HEADERS_TIMEOUT_MS + 5_000);
  });

  it('closes request bodies sent one byte at a time (after requestTimeout)', async (t) => {
    const closes = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const socket = await tcp(hub.port, '127.0.0.21');
        const closed = whenClosed(socket);
        socket.write(
          `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Length: 1000\r\n\r\n`,
        );
        dribble(socket, '{"channel":"a","data":"' + 'x'.repeat(900), 100);
        return closed;
      }),
    );
    const times = closes.map((c) => c.afterMs);
    recordFigures(t, 'slowloris-body', {
      connections: 50,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      closedAfterMs: stats(times),
      answered: [...new Set(closes.map((c) => c.head.slice(0, 12) || 'nothing'))],
    });
    assert.ok(Math.max(...times) < REQUEST_TIMEOUT_MS + 5_000);
    // The handler was waiting for the body: nothing was published, nothing answered but the cut.
    assert.ok(
      closes.every((c) => c.head === '' || c.head.startsWith('HTTP/1.1 408')),
      JSON.stringify(closes[0]?.head),
    );
  });

  it('ends a WebSocket dribbling a frame before connect with 4006, and after connect by ping timeout', async (t) => {
    const jwt = await token();
    // Before connect, on a hub with the default ping interval, so only the connect deadline can act.
    const quiet = await startHub({ connectTimeoutMs: CONNECT_TIMEOUT_MS });
    const early = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const ws = await RawWs.open(quiet.port, { localAddress: '127.0.0.22' });
        ws.answerPings = false;
        const started = Date.now();
        dribble(ws.socket, textFrame(JSON.stringify({ id: 1, method: 'connect', params: { token: jwt } })), 200);
        const code = await ws.closeCodeOf(20_000);
        return { code, afterMs: Date.now() - started };
      }),
    );
    await quiet.close();
    const late = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const ws = await RawWs.open(hub.port, { localAddress: '127.0.0.23' });
        ws.command(1, 'connect', { token: jwt });
        await ws.waitFor((f) => f.opcode === Opcode.Text);
        // From here on the peer is inside one frame: it cannot answer pings any more.
        ws.answerPings = false;
        const started = Date.now();
        const closed = whenClosed(ws.socket);
        dribble(ws.socket, textFrame(JSON.stringify({ id: 2, method: 'ping', params: { pad: 'x'.repeat(500) } })), 200);
        await closed;
        return { afterMs: Date.now() - started, pingsSeen: ws.frames.filter((f) => f.opcode === Opcode.Ping).length };
      }),
    );
    recordFigures(t, 'slowloris-websocket', {
      beforeConnect: {
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        codes: [...new Set(early.map((e) => e.code))],
        closedAfterMs: stats(early.map((e) => e.afterMs)),
      },
      afterConnect: { pingIntervalS: PING_INTERVAL_S, closedAfterMs: stats(late.map((l) => l.afterMs)) },
    });
    assert.ok(
      early.every((e) => e.code === 4006),
      JSON.stringify(early.map((e) => e.code)),
    );
    assert.ok(Math.max(...late.map((l) => l.afterMs)) < 2 * PING_INTERVAL_S * 1000 + 5_000);
  });

  it('kept serving the healthy clients throughout', async (t) => {
    const report = await witness.finish();
    recordFigures(t, 'slowloris-witness', { ...report });
    assert.ok(report.acked > 20);
  });
});
