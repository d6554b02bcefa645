/**
 * Brokers side by side, in one run, through the public API only:
 *
 *   node --conditions=herald-source --import tsx apps/bench/src/broker-bench.ts \
 *     [--brokers memory,redis,nats] [--scenarios throughput,hot,loaded,latency,http] [--seconds 5]
 *     [--in-flight 64] [--hot-rate 300] [--rate 500] [--batch 100]
 *
 * For each broker (Redis at 127.0.0.1:6379 and NATS at 127.0.0.1:4222, override with
 * HERALD_BENCH_REDIS / HERALD_BENCH_NATS; every run uses a prefix of its own and deletes it):
 *   - throughput: acknowledged publications per second through one node's `hub.publish` (the
 *     path of POST /api/publish without HTTP) over 64 channels, `--in-flight` publishers each
 *     waiting for its acknowledgement, after a 1 s warm-up;
 *   - hot: one channel at `--hot-rate`/s (open loop), plain and with idempotency keys (as the SDK
 *     publishes): ack latency p50/p99 from `hub.publish` to its acknowledgement;
 *   - loaded: two hot channels at once, plain and keyed, while the throughput publishers saturate
 *     the node; refusals (429/503 from the bounded publish queue) are counted, not timed;
 *   - latency: node A accepts publications at `--rate`/s, a WebSocket client of node B receives
 *     them (both nodes in this process, one clock; the memory broker has one node only);
 *   - http: the server API from a worker thread: POST /api/publish (64 requests in flight),
 *     POST /api/batch (`--batch` publishes per request, 8 in flight), POST /api/broadcast (the 64
 *     channels per request, 8 in flight), publications acknowledged per second.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createNatsBackend } from '@herald/broker-nats';
import { createRedisBackend } from '@herald/broker-redis';
import { HeraldServer, type Broker, type HistoryLimits, type PresenceStore } from '@herald/server';
import { connect as natsConnect } from 'nats';
import { deleteRedisPrefix, REDIS_URL } from './bench-redis.js';
import {
  deliveryLatency,
  hotChannel,
  httpLoad,
  percentile,
  throughput,
  type Latencies,
  type Throughput,
} from './broker-scenarios.js';
import type { HttpLoadResult } from './http-load.js';

type Kind = 'memory' | 'redis' | 'nats';
type Scenario = 'throughput' | 'hot' | 'loaded' | 'latency' | 'http';
const SCENARIOS: readonly Scenario[] = ['throughput', 'hot', 'loaded', 'latency', 'http'];

const NATS_URL = process.env.HERALD_BENCH_NATS ?? 'nats://127.0.0.1:4222';
const HISTORY: HistoryLimits = { size: 1000, ttlSeconds: 600 };
const CHANNELS = 64;
const KEY = 'bench-api-key-0123456789';
const SECRET = 'bench-jwt-secret-0123456789abcdef0123456789';

const { values } = parseArgs({
  options: {
    brokers: { type: 'string', default: 'memory,redis,nats' },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    seconds: { type: 'string', default: '5' },
    publications: { type: 'string', default: '5000000' },
    'in-flight': { type: 'string', default: '64' },
    'hot-rate': { type: 'string', default: '300' },
    rate: { type: 'string', default: '500' },
    latency: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '100' },
  },
});
const kinds = (values.brokers ?? '').split(',').filter((k): k is Kind => ['memory', 'redis', 'nats'].includes(k));
const scenarios = new Set(
  (values.scenarios ?? '').split(',').filter((s): s is Scenario => SCENARIOS.includes(s as Scenario)),
);
const seconds = Number(values.seconds);
const maxPublications = Number(values.publications);
const inFlight = Number(values['in-flight']);
const hotRate = Number(values['hot-rate']);
const rate = Number(values.rate);
const latencyCount = Number(values.latency);
const batchSize = Number(values.batch);

interface Figures {
  readonly broker: Kind;
  throughput?: Throughput;
  hot?: Latencies;
  hotKeyed?: Latencies;
  loaded?: { hot: Latencies; hotKeyed: Latencies; background: Throughput };
  latency?: Latencies & { crossNode: boolean };
  http?: Partial<Record<'publish' | 'batch' | 'broadcast', HttpLoadResult>>;
}

async function backend(kind: Kind, prefix: string): Promise<{ broker: Broker; presence: PresenceStore } | undefined> {
  if (kind === 'memory') return undefined;
  if (kind === 'redis') return createRedisBackend({ url: REDIS_URL, history: HISTORY, prefix });
  return createNatsBackend({ url: NATS_URL, history: HISTORY, prefix });
}

async function node(kind: Kind, prefix: string): Promise<HeraldServer> {
  const shared = await backend(kind, prefix);
  const server = new HeraldServer({
    apiKey: KEY,
    jwtSecret: SECRET,
    anonymousChannels: ['bench*'],
    historySize: HISTORY.size,
    historyTtlSeconds: HISTORY.ttlSeconds,
    ...(shared === undefined ? {} : { broker: shared.broker, presence: shared.presence }),
  });
  await server.listen(0, '127.0.0.1');
  return server;
}

async function cleanup(kind: Kind, prefix: string): Promise<void> {
  if (kind === 'redis') {
    await deleteRedisPrefix(prefix);
  } else if (kind === 'nats') {
    const nc = await natsConnect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    for (const stream of [`${prefix}_history`, `KV_${prefix}_epochs`, `KV_${prefix}_idem`, `KV_${prefix}_presence`]) {
      await jsm.streams.delete(stream).catch(() => undefined);
    }
    await nc.close();
  }
}

async function measure(kind: Kind): Promise<Figures> {
  const prefix = `bench_${randomBytes(4).toString('hex')}`;
  const channels = Array.from({ length: CHANNELS }, (_, i) => `bench-${prefix}:${i}`);
  const a = await node(kind, prefix);
  const b = kind === 'memory' || !scenarios.has('latency') ? a : await node(kind, prefix);
  const figures: Figures = { broker: kind };
  const step = (name: string): void => void process.stderr.write(`  ${kind}: ${name}\n`);
  try {
    if (scenarios.has('throughput')) {
      step('throughput');
      const options = { inFlight, seconds, max: maxPublications, warmupMs: 1000 };
      figures.throughput = await throughput(a, channels, options);
    }
    if (scenarios.has('hot')) {
      step('hot channel');
      figures.hot = await hotChannel(a, `bench-${prefix}:hot`, { rate: hotRate, seconds, keyed: false });
      figures.hotKeyed = await hotChannel(a, `bench-${prefix}:hot-keyed`, { rate: hotRate, seconds, keyed: true });
    }
    if (scenarios.has('loaded')) {
      step('hot channel under load');
      let stop = false;
      const background = throughput(a, channels, {
        inFlight,
        seconds: seconds + 2,
        max: Number.POSITIVE_INFINITY,
        warmupMs: 0,
        stop: () => stop,
      });
      await new Promise((r) => setTimeout(r, 500));
      const [hot, hotKeyed] = await Promise.all([
        hotChannel(a, `bench-${prefix}:hot-loaded`, { rate: hotRate, seconds, keyed: false }),
        hotChannel(a, `bench-${prefix}:hot-loaded-keyed`, { rate: hotRate, seconds, keyed: true }),
      ]);
      stop = true;
      figures.loaded = { hot, hotKeyed, background: await background };
    }
    if (scenarios.has('latency')) {
      step('cross-node latency');
      const measured = await deliveryLatency(a, b, `bench-${prefix}:latency`, {
        rate,
        count: latencyCount,
        seconds: Math.max(seconds, latencyCount / rate + 1),
      });
      figures.latency = { ...measured, crossNode: a !== b };
    }
    if (scenarios.has('http')) {
      step('server API');
      const http: NonNullable<Figures['http']> = {};
      const opts = { batchSize, seconds };
      http.publish = await httpLoad(a, KEY, 'publish', channels, { ...opts, inFlight: 64 });
      http.batch = await httpLoad(a, KEY, 'batch', channels, { ...opts, inFlight: 8 });
      http.broadcast = await httpLoad(a, KEY, 'broadcast', channels, { ...opts, inFlight: 8 });
      figures.http = http;
    }
    return figures;
  } finally {
    await a.close();
    if (b !== a) await b.close();
    await cleanup(kind, prefix);
  }
}

const ms = (value: number): string =>
  Number.isNaN(value) ? 'n/a' : `${value < 10 ? value.toFixed(2) : value.toFixed(0)} ms`;
const int = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a');
const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
const p = (l: Latencies | undefined, q: number): string => (l === undefined ? '' : ms(percentile(l.samples, q)));
const refusedOf = (l: Latencies | undefined): string => (l === undefined ? '' : String(l.refused));
function perSecond(r: HttpLoadResult | undefined): string {
  if (r === undefined) return '';
  if (r.firstBadStatus === 404) return 'no route';
  return int(r.published / r.seconds) + (r.failed > 0 ? ` (${r.failed} failed)` : '');
}

const results: Figures[] = [];
for (const kind of kinds) {
  process.stderr.write(`measuring ${kind}…\n`);
  results.push(await measure(kind));
}
const out: string[] = [];
if (scenarios.has('throughput')) {
  out.push(
    line(['broker', 'publish/s, one node', 'CPU µs per publication (hub process)', 'refused']),
    line(['---', '---:', '---:', '---:']),
    ...results.map((r) =>
      line([
        r.broker,
        r.throughput === undefined ? '' : int(r.throughput.perSecond),
        r.throughput === undefined ? '' : r.throughput.cpuUsPerPublication.toFixed(1),
        r.throughput === undefined ? '' : String(r.throughput.refused),
      ]),
    ),
    '',
  );
}
if (scenarios.has('hot') || scenarios.has('loaded')) {
  const loaded = (l: Latencies | undefined): string[] => [p(l, 50), p(l, 99), refusedOf(l)];
  out.push(
    line([
      'broker',
      `one channel at ${hotRate}/s: ack p50`,
      'p99',
      'keyed p50',
      'keyed p99',
      'under load: p50',
      'p99',
      'refused',
      'keyed p50',
      'keyed p99',
      'refused',
      'background publish/s',
    ]),
    line(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
    ...results.map((r) =>
      line([
        r.broker,
        p(r.hot, 50),
        p(r.hot, 99),
        p(r.hotKeyed, 50),
        p(r.hotKeyed, 99),
        ...loaded(r.loaded?.hot),
        ...loaded(r.loaded?.hotKeyed),
        r.loaded === undefined ? '' : int(r.loaded.background.perSecond),
      ]),
    ),
    '',
  );
}
if (scenarios.has('latency')) {
  out.push(
    line(['broker', 'delivery p50', 'p99', 'samples', 'path']),
    line(['---', '---:', '---:', '---:', '---']),
    ...results.map((r) =>
      line([
        r.broker,
        p(r.latency, 50),
        p(r.latency, 99),
        String(r.latency?.samples.length ?? ''),
        r.latency?.crossNode === true ? 'node A → node B' : 'one node',
      ]),
    ),
    '',
  );
}
if (scenarios.has('http')) {
  out.push(
    line([
      'broker',
      'POST /api/publish, publications/s',
      `POST /api/batch (${batchSize} per request)`,
      `POST /api/broadcast (${CHANNELS} channels)`,
    ]),
    line(['---', '---:', '---:', '---:']),
    ...results.map((r) =>
      line([r.broker, perSecond(r.http?.publish), perSecond(r.http?.batch), perSecond(r.http?.broadcast)]),
    ),
    '',
  );
}
out.push(
  `${CHANNELS} channels, ${inFlight} publishes in flight, ${seconds} s per scenario; hot channel at ${hotRate}/s; ` +
    `delivery latency at ${rate}/s; Node ${process.version}`,
);
process.stdout.write(out.join('\n') + '\n');
