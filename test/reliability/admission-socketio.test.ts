/**
 * Admission control for Socket.IO: every new Engine.IO session (a long-polling handshake or a
 * direct WebSocket) passes the hub's per-address cap and connection rates, is refused with HTTP
 * 429 `rate_limited` (the client sees `connect_error`), holds its slot for as long as the session
 * lives, whatever transport it ends on, and gives it back when it closes. Real `socket.io-client`
 * from chosen 127.0.0.x source addresses against a real hub with `attachSocketIo`.
 */
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { describe, it } from 'node:test';
import { HeraldServer, type HeraldOptions } from '@herald/server';
import { attachSocketIo } from '@herald/transport-socketio';
import { io, type Socket } from 'socket.io-client';
import { API_KEY, JWT_SECRET, publish, until, type TestHub } from '../support/hub.ts';
import { recordFigures } from './support/figures.ts';
import { httpGet, openWs, tcp, whenClosed } from './support/http-raw.ts';

type Transport = 'polling' | 'websocket';
type Mode = Transport | 'upgrade';

const CHANNEL = 'public:sio';

async function withSioHub<T>(options: Partial<HeraldOptions>, fn: (hub: TestHub) => Promise<T>): Promise<T> {
  const server = new HeraldServer({
    apiKey: API_KEY,
    jwtSecret: JWT_SECRET,
    anonymousChannels: ['public:*'],
    ...options,
  });
  attachSocketIo(server);
  const { port } = await server.listen(0, '127.0.0.1');
  const hub: TestHub = {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    close: () => server.close(),
  };
  try {
    return await fn(hub);
  } finally {
    await hub.close();
  }
}

interface Attempt {
  readonly ok: boolean;
  readonly socket: Socket;
  /** What `connect_error` said when refused: the transport error and the HTTP status if it tells one. */
  readonly error?: string;
  readonly received: unknown[];
}

/**
 * One Socket.IO client from `localAddress`, without automatic reconnection (a refused one must
 * stay refused for the count). Resolves on `connect` or on the first `connect_error`.
 */
function sioConnect(url: string, mode: Mode, localAddress: string): Promise<Attempt> {
  const socket = io(url, {
    transports: mode === 'websocket' ? ['websocket'] : mode === 'polling' ? ['polling'] : ['polling', 'websocket'],
    upgrade: mode === 'upgrade',
    forceNew: true,
    reconnection: false,
    // Both engine.io-client transports (xmlhttprequest-ssl and ws) connect through the agent.
    agent: new Agent({ localAddress }) as unknown as string,
  });
  const received: unknown[] = [];
  socket.on('message', (pub: { data: unknown }) => received.push(pub.data));
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ ok: true, socket, received }));
    socket.once('connect_error', (error: Error & { description?: unknown }) => {
      const status = describeStatus(error.description);
      resolve({ ok: false, socket, received, error: `${error.message}${status}` });
    });
  });
}

function describeStatus(description: unknown): string {
  if (typeof description === 'number') return ` ${description}`;
  const message = (description as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? ` (${message})` : '';
}

async function subscribe(socket: Socket): Promise<void> {
  const reply = (await socket.timeout(5000).emitWithAck('subscribe', { channel: CHANNEL })) as { ok: boolean };
  assert.equal(reply.ok, true, 'subscribed');
}

/** Retries a new session from `ip` until one is admitted (a closed session frees its slot when its close reaches the hub). */
async function admittedAgain(url: string, mode: Mode, ip: string): Promise<Attempt> {
  let attempt = await sioConnect(url, mode, ip);
  for (let i = 0; i < 50 && !attempt.ok; i++) {
    attempt.socket.close();
    await new Promise((r) => setTimeout(r, 100));
    attempt = await sioConnect(url, mode, ip);
  }
  return attempt;
}

const pollingHandshake = (port: number, ip: string) =>
  httpGet(port, '/socket.io/?EIO=4&transport=polling', { localAddress: ip });
const socketIoWsUrl = (port: number): string => `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;

describe('admission: Socket.IO sessions', () => {
  for (const mode of ['polling', 'websocket'] as const) {
    it(`caps open ${mode} sessions per address (429, connect_error); the open ones keep receiving; a closed one frees its slot`, async (t) => {
      const cap = 3;
      await withSioHub({ maxConnectionsPerIp: cap }, async (hub) => {
        const ip = mode === 'polling' ? '127.0.0.61' : '127.0.0.62';
        const open = await Promise.all(Array.from({ length: cap }, () => sioConnect(hub.url, mode, ip)));
        assert.deepEqual(
          open.map((a) => a.error ?? 'ok'),
          Array(cap).fill('ok'),
        );
        for (const a of open) await subscribe(a.socket);

        // Beyond the cap: the client is refused, and so is every other way in from that address.
        const refused = await sioConnect(hub.url, mode, ip);
        assert.equal(refused.ok, false, 'a session beyond the cap is refused');
        const rawPolling = await pollingHandshake(hub.port, ip);
        assert.equal(rawPolling.status, 429);
        assert.equal(JSON.parse(rawPolling.body).error.code, 'rate_limited');
        assert.equal(rawPolling.headers['retry-after'], '5');
        const rawWs = await openWs(socketIoWsUrl(hub.port), ip);
        assert.equal(rawWs.status, 429);
        assert.equal(rawWs.retryAfter, '5');
        const nativeWs = await openWs(hub.wsUrl, ip);
        assert.equal(nativeWs.status, 429, 'Socket.IO sessions count against the same cap as /ws');
        const nativeSse = await httpGet(hub.port, `/sse?channel=${CHANNEL}`, { localAddress: ip });
        assert.equal(nativeSse.status, 429);
        // Another address is not affected.
        const other = await sioConnect(hub.url, mode, '127.0.0.63');
        assert.ok(other.ok, `another address: ${other.error}`);

        // The admitted sessions never noticed.
        await publish(hub, CHANNEL, { n: 1 });
        await until(() => open.every((a) => a.received.length === 1), 'every open session to get the publication');
        assert.deepEqual(
          open.map((a) => a.received),
          Array(cap).fill([{ n: 1 }]),
        );

        // One session closes: its slot comes back, and only one.
        open[0]?.socket.close();
        const again = await admittedAgain(hub.url, mode, ip);
        assert.ok(again.ok, `after a close: ${again.error}`);
        const stillFull = await sioConnect(hub.url, mode, ip);
        assert.equal(stillFull.ok, false, 'one close frees one slot');

        // All close: the address is free again for every transport.
        for (const a of [...open, again]) a.socket.close();
        const freed = await admittedAgain(hub.url, mode, ip);
        assert.ok(freed.ok, `after every close: ${freed.error}`);
        const ws = await openWs(hub.wsUrl, ip);
        assert.ok(ws.ok, 'a native WebSocket fits again');
        recordFigures(t, `admission-socketio-cap-${mode}`, {
          cap,
          refusedClientSaw: refused.error,
          rawPolling: rawPolling.status,
          rawWebSocket: rawWs.status,
          nativeWs: nativeWs.status,
          nativeSse: nativeSse.status,
        });
        ws.socket?.terminate();
        for (const a of [refused, other, stillFull, freed]) a.socket.close();
      });
    });
  }

  it('counts a session once when it upgrades from long-polling to WebSocket', async (t) => {
    const cap = 3;
    await withSioHub({ maxConnectionsPerIp: cap }, async (hub) => {
      const ip = '127.0.0.64';
      const open = await Promise.all(Array.from({ length: cap }, () => sioConnect(hub.url, 'upgrade', ip)));
      assert.ok(open.every((a) => a.ok));
      // At the cap, each session's upgrade must still go through: it is not a new connection.
      await until(
        () => open.every((a) => a.socket.io.engine.transport.name === 'websocket'),
        'every session to upgrade to WebSocket',
        10_000,
      );
      for (const a of open) await subscribe(a.socket);
      const refused = await sioConnect(hub.url, 'upgrade', ip);
      assert.equal(refused.ok, false, 'a fourth session is refused');
      await publish(hub, CHANNEL, { n: 1 });
      await until(() => open.every((a) => a.received.length === 1), 'the upgraded sessions to receive');
      open[0]?.socket.close();
      const again = await admittedAgain(hub.url, 'upgrade', ip);
      assert.ok(again.ok, `an upgraded session frees its slot when it closes: ${again.error}`);
      recordFigures(t, 'admission-socketio-upgrade', { cap, upgraded: cap, refusedClientSaw: refused.error });
      for (const a of [...open, refused, again]) a.socket.close();
    });
  });

  it('frees the slot of a handshake that fails after admission (no session, no leak)', async () => {
    await withSioHub({ maxConnectionsPerIp: 1 }, async (hub) => {
      const ip = '127.0.0.65';
      // An upgrade whose Sec-WebSocket-Key is not valid passes admission and is then refused by
      // the WebSocket handshake itself (400). (Engine.IO protocols other than 4 no longer get this
      // far: the adapter refuses them before admission.)
      for (let i = 0; i < 5; i++) {
        const socket = await tcp(hub.port, ip);
        const closed = whenClosed(socket);
        socket.write(
          'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
            'Connection: Upgrade\r\nSec-WebSocket-Key: not-a-key\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
        assert.match((await closed).head, /^HTTP\/1\.1 400/, 'the handshake refused it after admission');
      }
      const old = await httpGet(hub.port, '/socket.io/?EIO=3&transport=polling', { localAddress: ip });
      assert.equal(old.status, 400, 'EIO=3 is refused (before admission)');
      const session = await admittedAgain(hub.url, 'polling', ip);
      assert.ok(session.ok, `the failed handshakes kept no slot: ${session.error}`);
      session.socket.close();
    });
  });

  it('limits the rate of new sessions per address and for the whole hub', async (t) => {
    // One token per address every 2 s: the address stays refused while the run checks it, even
    // on a loaded machine (at 2/s, a run slower than half a second found a token again).
    const perIp = { perSecond: 0.5, burst: 4 };
    const global = { perSecond: 2, burst: 10 };
    await withSioHub({ connectionRatePerIp: perIp, connectionRate: global }, async (hub) => {
      // Token buckets refill while the attempts are made: allow what the elapsed time refilled.
      const refill = (started: number, perSecond: number): number =>
        Math.ceil(((Date.now() - started) / 1000) * perSecond);
      const started = Date.now();
      const burst = (mode: Transport, ip: string, count: number): Promise<Attempt[]> =>
        Promise.all(Array.from({ length: count }, () => sioConnect(hub.url, mode, ip)));
      const polling = await burst('polling', '127.0.0.71', 8);
      const websocket = await burst('websocket', '127.0.0.72', 8);
      const admitted = (attempts: Attempt[]): number => attempts.filter((a) => a.ok).length;
      for (const [name, attempts] of [
        ['polling', polling],
        ['websocket', websocket],
      ] as const) {
        const n = admitted(attempts);
        assert.ok(n >= perIp.burst && n <= perIp.burst + refill(started, perIp.perSecond), `${name} burst: ${n}`);
      }
      // A third address has what is left of the hub's bucket (10 - 8), then is refused too.
      const third = await burst('polling', '127.0.0.73', 6);
      const thirdAdmitted = admitted(third);
      const globalLeft = global.burst - admitted(polling) - admitted(websocket);
      assert.ok(
        thirdAdmitted >= Math.max(0, globalLeft) && thirdAdmitted <= globalLeft + refill(started, global.perSecond),
        `hub-wide: ${thirdAdmitted} admitted with ${globalLeft} left`,
      );
      const raw = await pollingHandshake(hub.port, '127.0.0.71');
      assert.equal(raw.status, 429, 'the address bucket is still empty');
      assert.equal(raw.headers['retry-after'], '2', 'a token comes back in 2 s');
      // Tokens come back with time.
      await new Promise((r) => setTimeout(r, 2100));
      const later = await sioConnect(hub.url, 'websocket', '127.0.0.71');
      assert.ok(later.ok, `a token came back after two seconds: ${later.error}`);
      recordFigures(t, 'admission-socketio-rate', {
        perIp: '0.5/s burst 4',
        global: '2/s burst 10',
        attempts: { polling: 8, websocket: 8, thirdAddress: 6 },
        admitted: { polling: admitted(polling), websocket: admitted(websocket), thirdAddress: thirdAdmitted },
        refusedClientSaw: [...new Set([...polling, ...websocket].filter((a) => !a.ok).map((a) => a.error))],
      });
      for (const a of [...polling, ...websocket, ...third, later]) a.socket.close();
    });
  });
});
