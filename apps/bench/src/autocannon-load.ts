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
  /** Server CPU per acknowledged publication, µs. */
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
    // Counting only: no publication reaches its count, so `await` below returns at its timeout.
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
    const cpu1 = await fleet.cpu();
    const counted = await Promise.all(fleet.loadGens.map((lg) => lg.request('await', { timeoutMs: 2_000 }, 15_000)));
    const delivered = counted.reduce((s, a) => s + (a.received as number), 0);
    const ok = result['2xx'];
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
      cpuPerPublishUs: (cpu1 - cpu0) / Math.max(1, ok),
    };
  } finally {
    await fleet.stop();
  }
}
