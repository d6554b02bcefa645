/**
 * A third-party load tool on the publish path: autocannon (50 connections by default) sends
 * `POST /api/publish` to a Herald process while `--autocannon-subscribers` WebSocket clients
 * receive every publication. Bounded in time by autocannon's duration. Reports the publications
 * acknowledged per second (2xx answers), the publish latency, and whether the subscribers got
 * every publication (counted by the load generators).
 */
import autocannon from 'autocannon';
import { startFleet } from './fleet.js';
import type { BenchOptions } from './options.js';
import type { Answer, Children } from './procs.js';
import { benchPayload } from './payload.js';
import { BENCH_CHANNEL } from './targets.js';

/** How long the subscribers may take, after autocannon stops, to receive what was acknowledged. */
const SETTLE_TIMEOUT_MS = 30_000;

export interface AutocannonResult {
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
  bench: BenchOptions;
  children: Children;
  log: (line: string) => void;
}): Promise<AutocannonResult> {
  const { bench } = o;
  const n = bench.autocannonSubscribers;
  const fleet = await startFleet({
    name: 'autocannon-herald-ws',
    server: 'herald',
    nodes: [[]],
    client: 'herald-ws',
    n,
    round: 1,
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
      headers: { authorization: `Bearer ${hello.apiKey as string}`, 'content-type': 'application/json' },
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
