/**
 * Brokers side by side, in one run, through the public API only:
 *
 *   node --conditions=herald-source --import tsx apps/bench/src/broker-bench.ts \
 *     [--brokers memory,redis,nats] [--publications 20000] [--seconds 10] [--latency 2000] [--rate 500]
 *
 * For each broker:
 *   - publish/s: acknowledged publications per second through one node (`hub.publish`, the path
 *     of POST /api/publish without HTTP), spread over 64 channels, 64 in flight;
 *   - latency: a WebSocket subscriber on node B, publications accepted by node A at a steady
 *     rate; the time from `hub.publish` being called to the frame being parsed by the client.
 *     Both nodes run in this process (same clock). The memory broker cannot share, so its
 *     "cross-node" figure is one node.
 * Redis at 127.0.0.1:6379 and NATS at 127.0.0.1:4222 (override with HERALD_BENCH_REDIS /
 * HERALD_BENCH_NATS); every run uses a prefix of its own and deletes it afterwards.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createNatsBackend } from '@herald/broker-nats';
import { createRedisBackend } from '@herald/broker-redis';
import { HeraldServer, type Broker, type HistoryLimits, type PresenceStore } from '@herald/server';
import { Redis } from 'ioredis';
import { connect as natsConnect } from 'nats';
import WebSocket from 'ws';

type Kind = 'memory' | 'redis' | 'nats';

interface Figures {
  readonly broker: Kind;
  readonly published: number;
  readonly publishPerSecond: number;
  readonly latencyCount: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly crossNode: boolean;
}

const REDIS_URL = process.env.HERALD_BENCH_REDIS ?? 'redis://127.0.0.1:6379';
const NATS_URL = process.env.HERALD_BENCH_NATS ?? 'nats://127.0.0.1:4222';
const HISTORY: HistoryLimits = { size: 1000, ttlSeconds: 600 };
const CHANNELS = 64;
const IN_FLIGHT = 64;
const KEY = 'bench-api-key-0123456789';
const SECRET = 'bench-jwt-secret-0123456789abcdef0123456789';

const { values } = parseArgs({
  options: {
    brokers: { type: 'string', default: 'memory,redis,nats' },
    publications: { type: 'string', default: '20000' },
    seconds: { type: 'string', default: '10' },
    latency: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '500' },
  },
});
const kinds = (values.brokers ?? '').split(',').filter((k): k is Kind => ['memory', 'redis', 'nats'].includes(k));
const maxPublications = Number(values.publications);
const maxSeconds = Number(values.seconds);
const latencyCount = Number(values.latency);
const rate = Number(values.rate);

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

/** Acknowledged publications per second through one node, bounded by count and time. */
async function throughput(server: HeraldServer, prefix: string): Promise<{ count: number; perSecond: number }> {
  const deadline = performance.now() + maxSeconds * 1000;
  const data = { payload: 'x'.repeat(100) };
  let issued = 0;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, lane) => {
      while (issued < maxPublications && performance.now() < deadline) {
        issued++;
        await server.hub.publish({ channel: `bench-${prefix}:${lane % CHANNELS}`, data });
        done++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return { count: done, perSecond: done / seconds };
}

/** Publish on `from`, receive over WebSocket from `to`: p50 and p99 in ms. */
async function latency(from: HeraldServer, to: HeraldServer, prefix: string): Promise<number[]> {
  const port = (to.httpServer.address() as { port: number }).port;
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const channel = `bench-${prefix}:latency`;
  const samples: number[] = [];
  const replies = new Map<number, () => void>();
  socket.on('message', (raw) => {
    const message = JSON.parse(raw.toString());
    if (typeof message.id === 'number') replies.get(message.id)?.();
    else if (message.push === 'pub') samples.push(performance.now() - message.pub.data.t);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const call = (id: number, method: string, params: object): Promise<void> =>
    new Promise((resolve) => {
      replies.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await call(1, 'connect', {});
  await call(2, 'subscribe', { channel });
  const interval = 1000 / rate;
  const deadline = performance.now() + maxSeconds * 1000;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < latencyCount && performance.now() < deadline; i++) {
    const due = performance.now() + interval;
    pending.push(from.hub.publish({ channel, data: { t: performance.now() } }));
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(pending);
  const sent = pending.length;
  const until = performance.now() + 5_000;
  while (samples.length < sent && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  socket.close();
  return samples;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function cleanup(kind: Kind, prefix: string): Promise<void> {
  if (kind === 'redis') {
    const redis = new Redis(REDIS_URL);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
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
  const a = await node(kind, prefix);
  const b = kind === 'memory' ? a : await node(kind, prefix);
  try {
    const { count, perSecond } = await throughput(a, prefix);
    const samples = (await latency(a, b, prefix)).sort((x, y) => x - y);
    return {
      broker: kind,
      published: count,
      publishPerSecond: perSecond,
      latencyCount: samples.length,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
      crossNode: a !== b,
    };
  } finally {
    await a.close();
    if (b !== a) await b.close();
    await cleanup(kind, prefix);
  }
}

const results: Figures[] = [];
for (const kind of kinds) {
  process.stderr.write(`measuring ${kind}…\n`);
  results.push(await measure(kind));
}
const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
process.stdout.write(
  [
    line(['broker', 'publish/s, one node', 'publications', 'latency p50', 'latency p99', 'samples', 'path']),
    line(['---', '---:', '---:', '---:', '---:', '---:', '---']),
    ...results.map((r) =>
      line([
        r.broker,
        r.publishPerSecond.toFixed(0),
        String(r.published),
        `${r.p50Ms.toFixed(2)} ms`,
        `${r.p99Ms.toFixed(2)} ms`,
        String(r.latencyCount),
        r.crossNode ? 'node A → node B' : 'one node',
      ]),
    ),
  ].join('\n') + '\n',
);
process.stdout.write(
  `\n${CHANNELS} channels, ${IN_FLIGHT} publishes in flight; latency at ${rate}/s; Node ${process.version}\n`,
);
