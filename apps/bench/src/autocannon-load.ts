/**
 * A third-party load tool on the publish path: autocannon (50 connections) sends
 * `POST /api/publish` to a Herald process while `--autocannon-subscribers` WebSocket clients
 * receive every publication; then the same against the raw `ws` reference server (`POST
 * /publish`, one write per subscriber per publication), so the two sit side by side in one round.
 * Bounded in time by autocannon's duration. Reports the publications acknowledged per second (2xx
 * answers), the publish latency, and whether the subscribers got every publication (counted by the
 * load generators).
 */
import autocannon from 'autocannon';
import { startFleet } from './fleet.js';
import type { BenchOptions } from './options.js';
import type { Answer, Children } from './procs.js';
import { benchPayload } from './payload.js';
import { BENCH_CHANNEL } from './targets.js';

/** How long the subscribers may take, after autocannon stops, to receive what was acknowledged. */
const SETTLE_TIMEOUT_MS = 30_000;

/** Who autocannon publishes to: Herald's WebSocket, or the raw ws reference. */
export type AutocannonTarget = 'herald-ws' | 'ws';

export const AUTOCANNON_LABELS: Readonly<Record<AutocannonTarget, string>> = {
  'herald-ws': 'Herald WebSocket',
  ws: 'raw ws, one write per subscriber',
};

export interface AutocannonResult {
  readonly target: AutocannonTarget;
  readonly round: number;
  readonly subscribers: number;
  readonly connections: number;
  readonly seconds: number;
  /** 2xx answers per second. */
  readonly publishPerSecond: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly latencyP50: number;
  readonly latencyP99: number;
  /** Deliveries the subscribers counted, against publications acknowledged × subscribers. */
  readonly delivered: number;
  readonly expected: number;
  /**
   * Subscribers whose connection closed during the run: the hub ends a client that does not read
   * what it is sent (the queue bound, close 4004), as load generators starved of CPU can be. Each
   * one lightens the hub's work, so a run with any is no fair figure for the target.
   */
  readonly subscribersDropped: number;
  /** How they went, by reason (`closed with 4004` is the hub's queue bound). */
  readonly dropReasons: Readonly<Record<string, number>>;
  /** Server CPU per acknowledged publication, µs, until every subscriber had them (or the wait ran out). */
  readonly cpuPerPublishUs: number;
}

export async function measureAutocannon(o: {
  target: AutocannonTarget;
  round: number;
  bench: BenchOptions;
  children: Children;
  log: (line: string) => void;
}): Promise<AutocannonResult> {
  const { bench } = o;
  const n = bench.autocannonSubscribers;
  const fleet = await startFleet({
    name: `autocannon-${o.target}`,
    server: o.target === 'ws' ? 'ws' : 'herald',
    nodes: [[]],
    client: o.target,
    n,
    round: o.round,
    bench,
    children: o.children,
    log: o.log,
  });
  try {
    const hello = fleet.hellos[0] as Answer;
    // Counting only while autocannon runs: the count to reach is set once it is known (`expect`).
    await Promise.all(fleet.loadGens.map((lg) => lg.request('arm', { perClient: 1e9, latency: false })));
    const cpu0 = await fleet.cpu();
    const result = await autocannon({
      url: `http://127.0.0.1:${hello.port as number}${hello.publishPath as string}`,
      method: 'POST',
      connections: 50,
      duration: bench.autocannonSeconds,
      headers: {
        ...(hello.apiKey === undefined ? {} : { authorization: `Bearer ${hello.apiKey as string}` }),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ channel: BENCH_CHANNEL, data: benchPayload(0, 0, bench.payloadBytes) }),
    });
    // Every acknowledged publication reaches every subscriber: wait (bounded) until they all got
    // them, so the hub's CPU covers every delivery, not only those made before autocannon stopped.
    const ok = result['2xx'];
    await Promise.all(fleet.loadGens.map((lg) => lg.request('expect', { perClient: ok })));
    const counted = await Promise.all(
      fleet.loadGens.map((lg) => lg.request('await', { timeoutMs: SETTLE_TIMEOUT_MS }, SETTLE_TIMEOUT_MS + 10_000)),
    );
    const cpu1 = await fleet.cpu();
    const delivered = counted.reduce((s, a) => s + (a.received as number), 0);
    return {
      target: o.target,
      round: o.round,
      subscribers: fleet.connected,
      connections: 50,
      seconds: result.duration,
      publishPerSecond: ok / result.duration,
      ok,
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
      latencyP50: result.latency.p50,
      latencyP99: result.latency.p99,
      delivered,
      expected: ok * fleet.connected,
      subscribersDropped: counted.reduce((s, a) => s + (a.dropped as number), 0),
      dropReasons: mergeCounts(counted.map((a) => a.dropReasons as Record<string, number>)),
      cpuPerPublishUs: (cpu1 - cpu0) / Math.max(1, ok),
    };
  } finally {
    await fleet.stop();
  }
}

function mergeCounts(all: readonly Record<string, number>[]): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const counts of all) for (const [key, n] of Object.entries(counts)) merged[key] = (merged[key] ?? 0) + n;
  return merged;
}
