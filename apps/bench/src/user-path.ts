/**
 * The user-path scenarios: publications come from a separate publisher process over HTTP
 * (publisher.ts), as from a backend, and the subscribers are the load generators' clients. The
 * same for the reference servers (their `POST /publish`) and for Herald (`POST /api/publish`),
 * one node on the memory broker or two nodes on Redis (publish on A, subscribers on A and B).
 *
 *   burst: `--burst` publications, `--in-flight` requests in flight: server CPU per delivery
 *          (every node), deliveries per second, latency from the request and from the burst start;
 *   paced: `--rates` publications per second for `--latency-seconds`, open loop: latency from
 *          the request and from the schedule (does it keep up), server CPU per delivery.
 */
import { benchPrefix, deleteRedisPrefix } from './bench-redis.js';
import { startFleet } from './fleet.js';
import { Histogram, type HistogramData } from './histogram.js';
import { pacedPublications, type BenchOptions } from './options.js';
import type { Answer, Children } from './procs.js';
import type { ClientKind, ServerKind } from './targets.js';

export const USER_TARGET_IDS = [
  'ws',
  'sse',
  'socketio',
  'herald-ws',
  'herald-sse',
  'herald-ws-redis',
  'herald-sse-redis',
  'herald-ws-serve',
  'herald-ws-workers',
] as const;
export type UserTargetId = (typeof USER_TARGET_IDS)[number];

export interface UserTarget {
  readonly id: UserTargetId;
  readonly label: string;
  readonly server: ServerKind;
  readonly client: ClientKind;
  /** Two nodes sharing Redis, or one process on its own. */
  readonly redis: boolean;
  /** The server process's arguments. */
  readonly serverArgs?: readonly string[];
  /** The reference server its ratios are taken against, in the same round. */
  readonly reference: 'ws' | 'sse';
}

export const USER_TARGETS: Readonly<Record<UserTargetId, UserTarget>> = {
  ws: { id: 'ws', label: 'raw ws frame-once', server: 'ws', client: 'ws', redis: false, reference: 'ws' },
  sse: { id: 'sse', label: 'plain SSE (node:http)', server: 'sse', client: 'sse', redis: false, reference: 'sse' },
  socketio: {
    id: 'socketio',
    label: 'Socket.IO 4 (websocket)',
    server: 'socketio',
    client: 'socketio',
    redis: false,
    reference: 'ws',
  },
  'herald-ws': {
    id: 'herald-ws',
    label: 'Herald WebSocket',
    server: 'herald',
    client: 'herald-ws',
    redis: false,
    reference: 'ws',
  },
  'herald-sse': {
    id: 'herald-sse',
    label: 'Herald SSE',
    server: 'herald',
    client: 'herald-sse',
    redis: false,
    reference: 'sse',
  },
  'herald-ws-redis': {
    id: 'herald-ws-redis',
    label: 'Herald WebSocket, Redis, 2 nodes',
    server: 'herald',
    client: 'herald-ws',
    redis: true,
    reference: 'ws',
  },
  'herald-sse-redis': {
    id: 'herald-sse-redis',
    label: 'Herald SSE, Redis, 2 nodes',
    server: 'herald',
    client: 'herald-sse',
    redis: true,
    reference: 'sse',
  },
  // `herald serve` itself, one process and then two workers: the A/B of --workers, same command.
  'herald-ws-serve': {
    id: 'herald-ws-serve',
    label: 'Herald WebSocket, herald serve',
    server: 'herald-cli',
    client: 'herald-ws',
    redis: false,
    reference: 'ws',
  },
  'herald-ws-workers': {
    id: 'herald-ws-workers',
    label: 'Herald WebSocket, herald serve --workers 2',
    server: 'herald-cli',
    serverArgs: ['--workers', '2'],
    client: 'herald-ws',
    redis: false,
    reference: 'ws',
  },
};

/** What `--user-targets` runs when not given: `herald serve` rows only when asked for. */
export const DEFAULT_USER_TARGET_IDS: readonly UserTargetId[] = USER_TARGET_IDS.filter(
  (id) => USER_TARGETS[id].server !== 'herald-cli',
);

export interface Latencies {
  /** Milliseconds, from the publish request. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Milliseconds, from when the publication was due (burst: its start). */
  readonly p50FromSchedule: number;
  readonly p99FromSchedule: number;
}

export interface UserPhase extends Latencies {
  /** Publications per second, or 0 for the burst. */
  readonly rate: number;
  readonly publications: number;
  readonly publishFailed: number;
  /** Paced publications not sent because `maxInFlight` requests were unanswered. */
  readonly skipped: number;
  readonly expected: number;
  readonly delivered: number;
  readonly complete: boolean;
  readonly seconds: number;
  readonly throughput: number;
  readonly serverCpuUs: number;
  readonly cpuPerDeliveryUs: number;
  /** Publish request to its answer, ms. */
  readonly ackP50: number;
  readonly ackP99: number;
}

export interface UserPathMeasurement {
  readonly target: UserTargetId;
  readonly n: number;
  readonly round: number;
  readonly connected: number;
  readonly nodes: number;
  /** The server processes, every node's (a node of `herald serve --workers 2` is three). */
  readonly serverPids: readonly number[];
  readonly burst: UserPhase;
  readonly paced: readonly UserPhase[];
}

interface AwaitAnswer extends Answer {
  complete: boolean;
  received: number;
  lastUs: number;
  histogram?: HistogramData;
  fromSchedule?: HistogramData;
}

const EMPTY: HistogramData = { buckets: [], count: 0, maxUs: 0 };
/** Paced publications that may wait for their answer at once (then the next is skipped). */
const MAX_IN_FLIGHT = 256;

function latencies(done: readonly AwaitAnswer[]): Latencies {
  const req = Histogram.merge(done.map((a) => a.histogram ?? EMPTY));
  const sched = Histogram.merge(done.map((a) => a.fromSchedule ?? EMPTY));
  const ms = (h: HistogramData, q: number): number => (h.count === 0 ? Number.NaN : Histogram.percentile(h, q) / 1000);
  return {
    p50: ms(req, 0.5),
    p99: ms(req, 0.99),
    max: ms(req, 1),
    p50FromSchedule: ms(sched, 0.5),
    p99FromSchedule: ms(sched, 0.99),
  };
}

export interface UserPathOptions {
  readonly target: UserTarget;
  readonly n: number;
  readonly round: number;
  readonly bench: BenchOptions;
  readonly children: Children;
  readonly log: (line: string) => void;
}

export async function measureUserPath(o: UserPathOptions): Promise<UserPathMeasurement> {
  const { target, n, bench } = o;
  const prefix = target.redis ? benchPrefix() : undefined;
  const nodes =
    prefix === undefined
      ? [target.serverArgs ?? []]
      : [
          ['--redis', prefix],
          ['--redis', prefix],
        ];
  const fleet = await startFleet({
    name: `user-${target.id}`,
    server: target.server,
    nodes,
    client: target.client,
    n,
    round: o.round,
    bench,
    children: o.children,
    log: o.log,
  });
  const publisher = o.children.spawn(`user-${target.id} publisher`, 'publisher');
  try {
    await publisher.request('hello', {}, 30_000);
    const a = fleet.hellos[0] as Answer;
    const to = { port: a.port, path: a.publishPath, apiKey: a.apiKey, bytes: bench.payloadBytes };
    const { loadGens, connected } = fleet;

    const phase = async (rate: number, count: number): Promise<UserPhase> => {
      await Promise.all(loadGens.map((lg) => lg.request('arm', { perClient: count, latency: true })));
      const cpu0 = await fleet.cpu();
      const published =
        rate === 0
          ? await publisher.request('burst', { ...to, count, inFlight: bench.inFlight, timeoutMs: 120_000 }, 130_000)
          : await publisher.request(
              'paced',
              { ...to, rate, count, maxInFlight: MAX_IN_FLIGHT },
              (count / rate) * 1000 + 60_000,
            );
      const expected = count * connected;
      const waitMs = Math.max(20_000, (expected / 10_000) * 1000);
      const done = await Promise.all(
        loadGens.map((lg) => lg.request<AwaitAnswer>('await', { timeoutMs: waitMs }, waitMs + 10_000)),
      );
      const cpu1 = await fleet.cpu();
      const delivered = done.reduce((s, d) => s + d.received, 0);
      const complete = done.every((d) => d.complete);
      const t0 = published.t0Us as number;
      const seconds = (Math.max(...done.map((d) => d.lastUs)) - t0) / 1e6;
      if (published.firstError !== undefined) o.log(`  ${target.id}: publish failed: ${String(published.firstError)}`);
      if (!complete)
        o.log(`  ${target.id}: ${rate === 0 ? 'burst' : `${rate}/s`} incomplete, ${delivered} of ${expected}`);
      return {
        rate,
        publications: count,
        publishFailed: published.failed as number,
        skipped: (published.skipped as number | undefined) ?? 0,
        expected,
        delivered,
        complete,
        seconds,
        throughput: complete ? delivered / seconds : Number.NaN,
        serverCpuUs: cpu1 - cpu0,
        cpuPerDeliveryUs: (cpu1 - cpu0) / Math.max(1, delivered),
        ackP50: published.ackP50 as number,
        ackP99: published.ackP99 as number,
        ...latencies(done),
      };
    };

    const burst = await phase(0, bench.burst);
    const paced: UserPhase[] = [];
    for (const rate of bench.rates) paced.push(await phase(rate, pacedPublications(bench, rate)));
    await Promise.all(loadGens.map((lg) => lg.request('close', {}, 30_000).catch(() => undefined)));
    const serverPids = fleet.hellos.flatMap((h) => h.pids as number[]);
    return { target: target.id, n, round: o.round, connected, nodes: nodes.length, serverPids, burst, paced };
  } finally {
    await publisher.stop(2_000);
    await fleet.stop();
    if (prefix !== undefined) await deleteRedisPrefix(prefix).catch(() => undefined);
  }
}
