/**
 * The drop-and-resume scenario: N subscribers of one channel per target, a publisher in its own
 * process publishing a bounded, numbered sequence over the target's publish route (Herald
 * `POST /api/publish`, the references their `POST /publish`), and every client's connection cut
 * from the client side every few seconds meanwhile (drop-clients.ts says how). Each client counts
 * every `seq` it is handed: delivered exactly once, lost, duplicated, out of order.
 *
 * Herald's guarantee (PROTOCOL.md section 8) is that a client resuming from a position still in
 * history gets every publication exactly once, in order: its rows must read 100 % exactly once.
 * The references are what people would otherwise run: raw `ws` with a naive reconnecting client
 * (no resume, losses expected), and Socket.IO with its connection state recovery on.
 */
import { benchPrefix, deleteRedisPrefix } from './bench-redis.js';
import { SERVER_SCRIPTS } from './fleet.js';
import type { BenchOptions } from './options.js';
import type { Answer, Child, Children } from './procs.js';
import type { DropClientKind } from './drop-clients.js';
import type { ServerKind } from './targets.js';

export const DROP_TARGET_IDS = ['herald-ws', 'herald-sse', 'herald-poll', 'herald-ws-redis', 'ws', 'socketio'] as const;
export type DropTargetId = (typeof DROP_TARGET_IDS)[number];

export interface DropTarget {
  readonly id: DropTargetId;
  readonly label: string;
  readonly server: ServerKind;
  readonly serverArgs: readonly string[];
  readonly client: DropClientKind;
  /** Whether the client can resume, so that losses are a failure rather than expected. */
  readonly resumes: boolean;
  /**
   * Two Herald nodes on one Redis (HERALD_BENCH_REDIS, default 127.0.0.1:6379): the publisher
   * posts to node A, every client is on node B, so each publication crosses the broker.
   */
  readonly redis?: boolean;
}

export const DROP_TARGETS: Readonly<Record<DropTargetId, DropTarget>> = {
  'herald-ws': {
    id: 'herald-ws',
    label: 'Herald WebSocket (@herald/client, resume)',
    server: 'herald',
    serverArgs: [],
    client: 'herald-ws',
    resumes: true,
  },
  'herald-sse': {
    id: 'herald-sse',
    label: 'Herald SSE (@herald/client, resume)',
    server: 'herald',
    serverArgs: [],
    client: 'herald-sse',
    resumes: true,
  },
  'herald-poll': {
    id: 'herald-poll',
    label: 'Herald long-polling (@herald/client, resume)',
    server: 'herald',
    serverArgs: [],
    client: 'herald-poll',
    resumes: true,
  },
  'herald-ws-redis': {
    id: 'herald-ws-redis',
    label: 'Herald WebSocket, Redis, publish on A, clients on B',
    server: 'herald',
    serverArgs: [],
    client: 'herald-ws',
    resumes: true,
    redis: true,
  },
  ws: { id: 'ws', label: 'raw ws, naive reconnect', server: 'ws', serverArgs: [], client: 'ws', resumes: false },
  socketio: {
    id: 'socketio',
    label: 'Socket.IO 4, connectionStateRecovery',
    server: 'socketio',
    serverArgs: ['--recovery'],
    client: 'socketio',
    resumes: true,
  },
};

/** Clients per target unless `--drop-clients` says otherwise: larger `--sizes` are capped to it. */
export const DROP_DEFAULT_CLIENTS = 200;
/** Each client's connection is cut first within CUT_MIN_MS, then every CUT_MIN_MS–CUT_MAX_MS. */
export const CUT_MIN_MS = 2_000;
export const CUT_MAX_MS = 4_000;
/** After the last publication: how long clients may take to come back and catch up, at most. */
const SETTLE_TIMEOUT_MS = 15_000;
/** Clients that cannot resume are settled once live and quiet this long. */
const SETTLE_QUIET_MS = 1_000;
/** Kept listening after settling, so that late duplicates are counted. */
const SETTLE_GRACE_MS = 300;

export interface DropMeasurement {
  readonly target: DropTargetId;
  readonly n: number;
  readonly round: number;
  readonly rate: number;
  readonly seconds: number;
  /** Publications scheduled, each carrying its `seq`: what every client should receive. */
  readonly perClient: number;
  readonly publishFailed: number;
  readonly publishSkipped: number;
  readonly clients: number;
  /** Client × publication pairs, by how often the publication reached that client's code. */
  readonly exactlyOnce: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Deliveries beyond the first, over every duplicated pair. */
  readonly extraDeliveries: number;
  /** First deliveries that came after a later publication. */
  readonly outOfOrder: number;
  /** Deliveries whose `seq` was not one published (never expected). */
  readonly strays: number;
  readonly clientsExactlyOnce: number;
  readonly cuts: number;
  readonly reconnects: number;
  /** Reconnects after which the library reported the missed publications as not replayed. */
  readonly notRecovered: number;
  /** Clients live at the end; `settled` false when the wait for them ran out. */
  readonly liveAtEnd: number;
  readonly settled: boolean;
  /** Process ids of the server, client and publisher processes, all stopped on return. */
  readonly pids: readonly number[];
}

export interface DropOptions {
  readonly target: DropTarget;
  readonly n: number;
  readonly round: number;
  readonly bench: BenchOptions;
  readonly children: Children;
  readonly log: (line: string) => void;
}

/** The distinct client counts the scenario runs: the run's `--sizes`, each capped at `--drop-clients`. */
export function dropSizes(bench: BenchOptions): number[] {
  return [...new Set(bench.sizes.map((n) => Math.min(n, bench.dropClients)))];
}

export async function measureDrop(o: DropOptions): Promise<DropMeasurement> {
  const { target, n, bench, children } = o;
  const rate = bench.dropRate;
  const count = Math.max(1, Math.round(rate * bench.dropSeconds));
  const name = `drop-${target.id}`;
  const started: Child[] = [];
  const spawn = (label: string, script: string, args: readonly string[] = []): Child => {
    const child = children.spawn(`${name} ${label}`, script, { args });
    started.push(child);
    return child;
  };
  const prefix = target.redis === true ? benchPrefix() : undefined;
  const serverArgs = prefix === undefined ? target.serverArgs : [...target.serverArgs, '--redis', prefix];
  const server = spawn('server', SERVER_SCRIPTS[target.server], serverArgs);
  const nodeB = prefix === undefined ? server : spawn('server B', SERVER_SCRIPTS[target.server], serverArgs);
  const clients = spawn('clients', 'drop-clients');
  const publisher = spawn('publisher', 'publisher');
  try {
    const [hello, helloB, clientsHello, publisherHello] = await Promise.all(
      [server, nodeB, clients, publisher].map((c) => c.request('hello', {}, 30_000)),
    );
    const a = hello as Answer;
    const b = helloB as Answer;
    await clients.request('connect', { kind: target.client, port: b.port, count: n, perClient: count }, 40_000);
    await clients.request('cuts', { minMs: CUT_MIN_MS, maxMs: CUT_MAX_MS });
    const to = { port: a.port, path: a.publishPath, apiKey: a.apiKey, bytes: bench.payloadBytes };
    const published = await publisher.request(
      'paced',
      { ...to, rate, count, maxInFlight: 256 },
      (count / rate) * 1000 + 60_000,
    );
    await clients.request('stop-cuts');
    if (published.firstError !== undefined) o.log(`  ${target.id}: publish failed: ${String(published.firstError)}`);
    const t = await clients.request(
      'settle',
      { timeoutMs: SETTLE_TIMEOUT_MS, quietMs: SETTLE_QUIET_MS, graceMs: SETTLE_GRACE_MS },
      SETTLE_TIMEOUT_MS + 10_000,
    );
    await clients.request('close', {}, 10_000).catch(() => undefined);
    const num = (key: string): number => t[key] as number;
    return {
      target: target.id,
      n,
      round: o.round,
      rate,
      seconds: bench.dropSeconds,
      perClient: count,
      publishFailed: published.failed as number,
      publishSkipped: (published.skipped as number | undefined) ?? 0,
      clients: num('clients'),
      exactlyOnce: num('exactlyOnce'),
      lost: num('lost'),
      duplicated: num('duplicated'),
      extraDeliveries: num('extraDeliveries'),
      outOfOrder: num('outOfOrder'),
      strays: num('strays'),
      clientsExactlyOnce: num('clientsExactlyOnce'),
      cuts: num('cuts'),
      reconnects: num('reconnects'),
      notRecovered: num('notRecovered'),
      liveAtEnd: num('live'),
      settled: t.settled === true,
      pids: [...new Set([a, b, clientsHello, publisherHello].map((h) => (h as Answer).pid as number))],
    };
  } finally {
    await Promise.all(started.map((c) => c.stop(2_000)));
    if (prefix !== undefined) await deleteRedisPrefix(prefix).catch(() => undefined);
  }
}
