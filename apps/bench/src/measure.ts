/**
 * One target at one subscriber count: start its server, open the clients from load-generator
 * processes, and measure setup rate, idle memory per connection, burst fan-out (throughput and
 * server CPU per delivery) and latency at fixed rates. Every process started here is stopped here.
 */
import { pacedPublications, type BenchOptions } from './options.js';
import { sleep } from './clock.js';
import { Histogram, type HistogramData } from './histogram.js';
import { startFleet } from './fleet.js';
import type { Answer, Child, Children } from './procs.js';
import type { Target } from './targets.js';

export interface MemoryReading {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
}

export interface LatencyResult {
  readonly rate: number;
  readonly messages: number;
  readonly samples: number;
  readonly expected: number;
  readonly complete: boolean;
  /** Milliseconds. */
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  /** Server CPU time per delivery in this phase: publications one at a time, no batching. */
  readonly cpuPerDeliveryUs: number;
}

export interface Measurement {
  readonly target: string;
  readonly n: number;
  readonly round: number;
  readonly connected: number;
  readonly serverConnections: number;
  readonly connectErrors: Record<string, number>;
  /** Connections per second until every client was ready to receive. */
  readonly setupRate: number;
  /** Server CPU time per connection set up. */
  readonly setupCpuPerConnUs: number;
  readonly memoryBefore: MemoryReading;
  readonly memoryAfter: MemoryReading;
  /** KiB per idle connection, after GC. */
  readonly rssPerConnKiB: number;
  readonly heapPerConnKiB: number;
  readonly burst: {
    readonly publications: number;
    readonly expected: number;
    readonly delivered: number;
    readonly complete: boolean;
    readonly seconds: number;
    /** Deliveries per second, from the first publish to the last receipt. */
    readonly throughput: number;
    readonly serverCpuUs: number;
    readonly cpuPerDeliveryUs: number;
    /** Write-family syscalls of the server per delivery (Linux), or undefined. */
    readonly syscallsPerDelivery: number | undefined;
  };
  readonly latency: readonly LatencyResult[];
  readonly serverFdLimit: number;
  readonly clientFdLimits: readonly number[];
  readonly loadGenerators: number;
}

interface AwaitAnswer extends Answer {
  complete: boolean;
  doneClients: number;
  clients: number;
  received: number;
  lastUs: number;
  histogram?: HistogramData;
}

export interface MeasureOptions {
  readonly target: Target;
  readonly n: number;
  readonly round: number;
  readonly bench: BenchOptions;
  readonly children: Children;
  /** Skip latency phases (capacity check). */
  readonly burstOnly?: { readonly publications: number };
  readonly log: (line: string) => void;
}

function memory(answer: Answer): MemoryReading {
  const m = answer.memory as NodeJS.MemoryUsage;
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

export async function measure(o: MeasureOptions): Promise<Measurement> {
  const { target, n, bench } = o;
  const fleet = await startFleet({
    name: target.id,
    server: target.server,
    nodes: [target.serverArgs],
    client: target.client,
    n,
    round: o.round,
    bench,
    children: o.children,
    log: o.log,
  });
  const server = fleet.servers[0] as Child;
  const hello = fleet.hellos[0] as Answer;
  const { loadGens, connected, connectErrors, setupSeconds, setupCpuUs } = fleet;
  try {
    const memoryBefore = memory(fleet.memoryBefore[0] as Answer);

    // ---- idle memory: let long-polls re-arm and handshakes settle, then GC
    await sleep(bench.quick ? 500 : 1_500);
    const afterMem = await server.request('mem');
    const memoryAfter = memory(afterMem);
    const serverConnections = afterMem.connections as number;

    // ---- burst
    const publications = o.burstOnly?.publications ?? bench.burst;
    const expected = publications * connected;
    await Promise.all(loadGens.map((lg) => lg.request('arm', { perClient: publications, latency: false })));
    const burst = await server.request('burst', { count: publications, bytes: bench.payloadBytes }, 120_000);
    const burstWait = Math.max(30_000, (expected / 10_000) * 1000);
    const burstDone = await Promise.all(
      loadGens.map((lg) => lg.request<AwaitAnswer>('await', { timeoutMs: burstWait }, burstWait + 10_000)),
    );
    const cpuEnd = await server.request('cpu');
    const delivered = burstDone.reduce((s, a) => s + a.received, 0);
    const lastUs = Math.max(...burstDone.map((a) => a.lastUs));
    const complete = burstDone.every((a) => a.complete);
    const seconds = ((complete ? lastUs : (cpuEnd.atUs as number)) - (burst.t0Us as number)) / 1e6;
    const serverCpuUs = (cpuEnd.cpuUs as number) - (burst.cpu0Us as number);
    if (!complete) o.log(`  ${target.id}: burst incomplete, ${delivered} of ${expected} deliveries`);

    // ---- latency at fixed rates
    const latency: LatencyResult[] = [];
    if (o.burstOnly === undefined) {
      for (const rate of bench.rates) {
        const messages = pacedPublications(bench, rate);
        await Promise.all(loadGens.map((lg) => lg.request('arm', { perClient: messages, latency: true })));
        const cpu0 = (await server.request('cpu')).cpuUs as number;
        await server.request(
          'rate',
          { rate, count: messages, bytes: bench.payloadBytes },
          (messages / rate) * 1000 + 30_000,
        );
        const done = await Promise.all(
          loadGens.map((lg) => lg.request<AwaitAnswer>('await', { timeoutMs: 30_000 }, 40_000)),
        );
        const cpu1 = (await server.request('cpu')).cpuUs as number;
        const histogram = Histogram.merge(done.map((a) => a.histogram ?? { buckets: [], count: 0, maxUs: 0 }));
        const ms = (q: number): number => Histogram.percentile(histogram, q) / 1000;
        latency.push({
          rate,
          messages,
          samples: histogram.count,
          expected: messages * connected,
          complete: done.every((a) => a.complete),
          p50: ms(0.5),
          p95: ms(0.95),
          p99: ms(0.99),
          max: ms(1),
          cpuPerDeliveryUs: (cpu1 - cpu0) / Math.max(1, histogram.count),
        });
      }
    }

    await Promise.all(loadGens.map((lg) => lg.request('close', {}, 30_000).catch(() => undefined)));
    return {
      target: target.id,
      n,
      round: o.round,
      connected,
      serverConnections,
      connectErrors,
      setupRate: connected / setupSeconds,
      setupCpuPerConnUs: setupCpuUs / connected,
      memoryBefore,
      memoryAfter,
      rssPerConnKiB: (memoryAfter.rss - memoryBefore.rss) / connected / 1024,
      heapPerConnKiB: (memoryAfter.heapUsed - memoryBefore.heapUsed) / connected / 1024,
      burst: {
        publications,
        expected,
        delivered,
        complete,
        seconds,
        throughput: delivered / seconds,
        serverCpuUs,
        cpuPerDeliveryUs: serverCpuUs / Math.max(1, delivered),
        syscallsPerDelivery:
          (burst.syscw as number) < 0
            ? undefined
            : ((cpuEnd.syscw as number) - (burst.syscw as number)) / Math.max(1, delivered),
      },
      latency,
      serverFdLimit: hello.fdLimit as number,
      clientFdLimits: fleet.clientHellos.map((h) => h.fdLimit as number),
      loadGenerators: loadGens.length,
    };
  } finally {
    await fleet.stop();
  }
}
