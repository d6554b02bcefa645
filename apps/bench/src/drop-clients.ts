/**
 * The client process of the drop-and-resume scenario (drop.ts): opens one kind of client, cuts
 * every client's connection on a random schedule while the publisher runs, and counts what each
 * client's application code receives, publication by publication (`seq` in the bench payload).
 *
 * The cut is the same for every kind: from the client side, its TCP connection is destroyed
 * without a close handshake (`ws.terminate()` for the WebSocket kinds, an aborted fetch for SSE
 * and for long-polling's poll in flight), as when a network drops. Each client then reconnects the
 * way its library does:
 *
 *   herald-ws, herald-sse, herald-poll: the real `@herald/client` SDK, which resumes from its
 *                          stream position (herald-ws also against two nodes on Redis, drop.ts);
 *   ws:                    a naive `ws` client that reconnects and has no way to resume;
 *   socketio:              `socket.io-client`, against a server with connection state recovery.
 *
 * Reconnect delays are alike: the SDK's full jitter from 100 ms, Socket.IO's 100 ms ± 50 %, the
 * naive client a random 0–100 ms. Counting happens after each library did its work, so a
 * duplicate the SDK drops is not counted: the figures are what an application sees.
 */
import { Herald, type WebSocketConstructor } from '@herald/client';
import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import type { BenchPayload } from './payload.js';
import { fdLimit, serveRpc } from './rpc.js';
import { BENCH_CHANNEL } from './targets.js';

export type DropClientKind = 'herald-ws' | 'herald-sse' | 'herald-poll' | 'ws' | 'socketio';

/** What one client saw; `counts[seq]` saturates at 255. */
interface Tally {
  counts: Uint8Array;
  /** The highest order key first delivered so far (see `deliver`). */
  maxOrder: number;
  outOfOrder: number;
  /** Deliveries whose `seq` is outside the expected range (none are published). */
  strays: number;
  reconnects: number;
  cuts: number;
  /** Reconnects after which the library said the missed publications were not replayed. */
  notRecovered: number;
  live: boolean;
  everLive: boolean;
}

interface DropClient {
  readonly tally: Tally;
  /** Destroys the current connection; false when there was none to cut. */
  cut(): boolean;
  close(): void;
}

const READY_TIMEOUT_MS = 20_000;
const RECONNECT_MIN_MS = 100;

let perClient = 0;
let lastFirstDelivery = 0;
const clients: DropClient[] = [];
const cutTimers = new Set<ReturnType<typeof setTimeout>>();

function newTally(): Tally {
  return {
    counts: new Uint8Array(perClient),
    maxOrder: -1,
    outOfOrder: 0,
    strays: 0,
    reconnects: 0,
    cuts: 0,
    notRecovered: 0,
    live: false,
    everLive: false,
  };
}

/**
 * A first delivery below the highest order key already seen is out of order; a repeat of a `seq` is
 * a duplicate. The order key is the hub's own order where the client sees it (Herald: the
 * publication's offset), else the publisher's numbering (`seq`): the publisher sends on schedule
 * with several requests in flight, so under load two publishes can reach a hub in the other order,
 * and every client then rightly gets them in the order they were stored.
 */
function deliver(t: Tally, seq: unknown, order?: number): void {
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq >= perClient) {
    t.strays++;
    return;
  }
  const count = t.counts[seq] as number;
  if (count === 0) {
    lastFirstDelivery = performance.now();
    const key = order ?? seq;
    if (key < t.maxOrder) t.outOfOrder++;
    else t.maxOrder = key;
  }
  if (count < 255) t.counts[seq] = count + 1;
}

function wentLive(t: Tally): void {
  if (t.everLive) t.reconnects++;
  t.everLive = true;
  t.live = true;
}

const HERALD_TRANSPORTS = { 'herald-ws': 'websocket', 'herald-sse': 'sse', 'herald-poll': 'poll' } as const;

function heraldClient(kind: 'herald-ws' | 'herald-sse' | 'herald-poll', port: number): DropClient {
  const tally = newTally();
  let socket: WebSocket | undefined;
  let stream: AbortController | undefined;
  // The SDK is given constructors that remember the live connection, so the cut can reach it.
  const Tracked = function (url: string): WebSocket {
    socket = new WebSocket(url, { perMessageDeflate: false });
    return socket;
  } as unknown as WebSocketConstructor;
  const cutFetch: typeof fetch = (input, init) => {
    const own = new AbortController();
    stream = own;
    const theirs = init?.signal ?? undefined;
    const signal = theirs === undefined ? own.signal : AbortSignal.any([theirs, own.signal]);
    return fetch(input, { ...init, signal });
  };
  const client = new Herald(`http://127.0.0.1:${port}`, {
    transports: [HERALD_TRANSPORTS[kind]],
    WebSocket: Tracked,
    fetch: cutFetch,
    minReconnectDelayMs: RECONNECT_MIN_MS,
    maxReconnectDelayMs: 2_000,
  });
  const sub = client.subscribe<BenchPayload>(BENCH_CHANNEL);
  sub.on('publication', (pub) => deliver(tally, pub.data.seq, pub.offset));
  sub.on('recovered', ({ recovered }) => {
    if (!recovered) tally.notRecovered++;
  });
  // Live once the hub confirmed the subscription (with a resume, the replay comes with it).
  sub.on('state', (state) => {
    if (state === 'subscribed') wentLive(tally);
    else tally.live = false;
  });
  return {
    tally,
    cut() {
      if (!tally.live) return false;
      if (kind === 'herald-ws') socket?.terminate();
      else stream?.abort();
      return true;
    },
    close: () => client.close(),
  };
}

function naiveWsClient(port: number): DropClient {
  const tally = newTally();
  let current: WebSocket | undefined;
  let closed = false;
  const open = (): void => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    current = ws;
    ws.on('open', () => wentLive(tally));
    ws.on('message', (data: Buffer) => {
      let payload: BenchPayload;
      try {
        payload = JSON.parse(data.toString()) as BenchPayload;
      } catch {
        tally.strays++;
        return;
      }
      deliver(tally, payload.seq);
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      tally.live = false;
      if (!closed) setTimeout(open, Math.random() * RECONNECT_MIN_MS);
    });
  };
  open();
  return {
    tally,
    cut() {
      if (!tally.live) return false;
      current?.terminate();
      return true;
    },
    close() {
      closed = true;
      current?.terminate();
    },
  };
}

/** The `ws` socket under socket.io-client's WebSocket transport (engine.io-client uses `ws` in Node). */
function engineSocketOf(socket: Socket): WebSocket | undefined {
  const engine = socket.io.engine as unknown as { transport?: { ws?: WebSocket } } | undefined;
  return engine?.transport?.ws;
}

function socketIoClient(port: number): DropClient {
  const tally = newTally();
  const socket = io(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    reconnectionDelay: RECONNECT_MIN_MS,
    reconnectionDelayMax: 2_000,
    randomizationFactor: 0.5,
  });
  socket.on('pub', (payload: BenchPayload) => deliver(tally, payload.seq));
  socket.on('connect', () => {
    if (tally.everLive && !socket.recovered) tally.notRecovered++;
    wentLive(tally);
  });
  socket.on('disconnect', () => (tally.live = false));
  return {
    tally,
    cut() {
      const ws = engineSocketOf(socket);
      if (!tally.live || ws === undefined) return false;
      ws.terminate();
      return true;
    },
    close: () => socket.close(),
  };
}

function openClient(kind: DropClientKind, port: number): DropClient {
  switch (kind) {
    case 'herald-ws':
    case 'herald-sse':
    case 'herald-poll':
      return heraldClient(kind, port);
    case 'ws':
      return naiveWsClient(port);
    case 'socketio':
      return socketIoClient(port);
  }
}

/** Resolves when `done()` holds (checked every 50 ms), or after `timeoutMs`; true if it held. */
function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  return new Promise((resolve) => {
    const check = (): void => {
      if (done()) resolve(true);
      else if (performance.now() >= deadline) resolve(false);
      else setTimeout(check, 50);
    };
    check();
  });
}

async function connect(kind: DropClientKind, port: number, count: number, expected: number): Promise<object> {
  perClient = expected;
  for (let i = 0; i < count; i++) clients.push(openClient(kind, port));
  await until(() => clients.every((c) => c.tally.live), READY_TIMEOUT_MS);
  const connected = clients.filter((c) => c.tally.live).length;
  if (connected < count) throw new Error(`${count - connected} of ${count} ${kind} clients not connected in time`);
  return { connected };
}

/** Each client is first cut within `minMs`, then every `minMs`–`maxMs` (uniform), until stopped. */
function startCuts(minMs: number, maxMs: number): void {
  for (const client of clients) {
    const schedule = (ms: number): void => {
      const timer = setTimeout(() => {
        cutTimers.delete(timer);
        if (client.cut()) client.tally.cuts++;
        schedule(minMs + Math.random() * (maxMs - minMs));
      }, ms);
      cutTimers.add(timer);
    };
    schedule(Math.random() * minMs);
  }
}

function stopCuts(): void {
  for (const timer of cutTimers) clearTimeout(timer);
  cutTimers.clear();
}

/**
 * Waits until every client is live again and has every publication, or (for clients that cannot
 * resume) until every client is live and no new publication arrived for `quietMs`; at most
 * `timeoutMs`. Then `graceMs` more, so that late duplicates are counted too.
 */
async function settle(timeoutMs: number, quietMs: number, graceMs: number): Promise<object> {
  const allLive = (): boolean => clients.every((c) => c.tally.live);
  const complete = (): boolean => clients.every((c) => c.tally.counts.every((n) => n > 0));
  const settled = await until(
    () => allLive() && (complete() || performance.now() - lastFirstDelivery >= quietMs),
    timeoutMs,
  );
  await new Promise((resolve) => setTimeout(resolve, graceMs));
  let exactlyOnce = 0;
  let lost = 0;
  let duplicated = 0;
  let extraDeliveries = 0;
  let clientsExactlyOnce = 0;
  const sum = { outOfOrder: 0, strays: 0, reconnects: 0, cuts: 0, notRecovered: 0, live: 0 };
  for (const { tally: t } of clients) {
    let once = 0;
    for (const n of t.counts) {
      if (n === 0) lost++;
      else if (n === 1) once++;
      else {
        duplicated++;
        extraDeliveries += n - 1;
      }
    }
    exactlyOnce += once;
    if (once === perClient) clientsExactlyOnce++;
    sum.outOfOrder += t.outOfOrder;
    sum.strays += t.strays;
    sum.reconnects += t.reconnects;
    sum.cuts += t.cuts;
    sum.notRecovered += t.notRecovered;
    if (t.live) sum.live++;
  }
  return {
    settled,
    clients: clients.length,
    perClient,
    exactlyOnce,
    lost,
    duplicated,
    extraDeliveries,
    clientsExactlyOnce,
    ...sum,
  };
}

serveRpc(async (request) => {
  switch (request.cmd) {
    case 'hello':
      return { fdLimit: fdLimit(), pid: process.pid };
    case 'connect':
      return connect(
        request.kind as DropClientKind,
        request.port as number,
        request.count as number,
        request.perClient as number,
      );
    case 'cuts':
      startCuts(request.minMs as number, request.maxMs as number);
      return {};
    case 'stop-cuts':
      stopCuts();
      return {};
    case 'settle':
      return settle(request.timeoutMs as number, request.quietMs as number, request.graceMs as number);
    case 'close':
      stopCuts();
      for (const client of clients) client.close();
      clients.length = 0;
      return {};
    default:
      throw new Error(`unknown command ${request.cmd}`);
  }
});
