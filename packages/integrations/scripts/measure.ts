/**
 * Figures for docs/integrations.md, with the public API and local endpoints only (bounded: fixed
 * counts, about half a minute on 2 cores).
 *   node --conditions=herald-source --import tsx packages/integrations/scripts/measure.ts
 *        [--quick] [--no-redis] [--no-nats] [--only=webhooks|push]
 *
 * 1. Webhook delivery latency: client publications over WebSocket at 100/s, each becoming a
 *    `publication` webhook to a local receiver (a worker thread) that verifies the signature;
 *    latency = arrival at the receiver minus the event's `ts` (same clock). Then throughput: events
 *    queued at once, drained with 8 and 32 requests in flight.
 * 2. Offline lag: users disconnect; lag = arrival of `user.offline` minus (disconnect + offlineDelay),
 *    i.e. what the sweep adds to the configured delay.
 * 3. Web Push throughput: publications with a `push` section to offline users, each encrypted
 *    (RFC 8291) and signed (VAPID) and POSTed to a local push service; pushes per second from the
 *    first publish to the last push received. Memory store, then Redis, then NATS KV store and
 *    registry.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { HeraldServer, type PublishInput } from '@herald/server';
import {
  DeadLetterLog,
  WebhookDispatcher,
  createEvent,
  startIntegrations,
  type PushSection,
} from '@herald/integrations';
import { pino } from 'pino';
import { SignJWT } from 'jose';
import { Worker } from 'node:worker_threads';
import WebSocket from 'ws';

const quick = process.argv.includes('--quick');
const withRedis = !process.argv.includes('--no-redis');
const withNats = !process.argv.includes('--no-nats');
const API_KEY = randomBytes(24).toString('base64url');
const JWT_SECRET = randomBytes(32).toString('base64url');
const SECRET = 'whsec-measure-0123456789';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
function summary(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  return `p50 ${percentile(s, 50).toFixed(1)} ms, p99 ${percentile(s, 99).toFixed(1)} ms, max ${(s.at(-1) ?? NaN).toFixed(1)} ms (n=${s.length})`;
}
async function jwt(sub: string): Promise<string> {
  return new SignJWT({ channels: ['*'], publish: ['*'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .sign(new TextEncoder().encode(JWT_SECRET));
}
async function until(predicate: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
async function hub(): Promise<{ server: HeraldServer; url: string }> {
  const server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${port}` };
}
async function connectWs(url: string, token: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`);
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  ws.send(JSON.stringify({ id: 1, method: 'connect', params: { token } }));
  await new Promise((r) => ws.once('message', r));
  return ws;
}

/**
 * The webhook receiver runs in a worker thread (its own event loop, like a separate backend), checks
 * each HMAC signature, and reports {id, type, ts, data, at} per event; `at` is Date.now() at arrival.
 */
const RECEIVER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createServer } = require('node:http');
const { createHmac } = require('node:crypto');
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const at = Date.now();
    const raw = Buffer.concat(chunks).toString('utf8');
    const [t, v1] = req.headers['herald-signature'].split(',').map((p) => p.slice(p.indexOf('=') + 1));
    const ok = createHmac('sha256', workerData.secret).update(t + '.' + raw).digest('hex') === v1;
    const event = JSON.parse(raw);
    parentPort.postMessage({ ok, at, id: event.id, ts: event.ts, data: event.data });
    res.writeHead(ok ? 204 : 400).end();
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
`;

const PUSH_SERVICE = `
const { parentPort } = require('node:worker_threads');
const { createServer } = require('node:http');
let n = 0;
setInterval(() => { if (n > 0) { parentPort.postMessage({ n }); n = 0; } }, 5);
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => { n++; res.writeHead(201).end(); });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
`;

interface Arrival {
  ok: boolean;
  at: number;
  id: string;
  ts: number;
  data: { userId?: string };
}

async function receiver(): Promise<{ url: string; arrivals: Map<string, Arrival>; close(): Promise<number> }> {
  const arrivals = new Map<string, Arrival>();
  const worker = new Worker(RECEIVER, { eval: true, workerData: { secret: SECRET } });
  const port = await new Promise<number>((resolve) =>
    worker.on('message', (m: Arrival | { port: number }) => {
      if ('port' in m) resolve(m.port);
      else if (m.ok) arrivals.set(m.id, m);
      else throw new Error('a webhook signature did not verify');
    }),
  );
  return { url: `http://127.0.0.1:${port}/hooks`, arrivals, close: () => worker.terminate() };
}

async function webhookLatency(): Promise<void> {
  const count = quick ? 300 : 1000;
  const rate = 100; // publications per second
  const rx = await receiver();
  const { server, url } = await hub();
  const integrations = await startIntegrations(server, {
    webhooks: { url: rx.url, secret: SECRET, events: ['publication'] },
  });
  // Ten publishers: each stays well under the hub's 100 commands/s per connection.
  const publishers = await Promise.all(Array.from({ length: 10 }, async (_, i) => connectWs(url, await jwt(`p${i}`))));
  const started = Date.now();
  for (let i = 0; i < count; i++) {
    const ws = publishers[i % publishers.length] as WebSocket;
    ws.send(JSON.stringify({ id: i + 2, method: 'publish', params: { channel: `m:${i % 10}`, data: { i } } }));
    const due = started + ((i + 1) * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  await until(() => rx.arrivals.size === count, 'all webhooks');
  const latencies = [...rx.arrivals.values()].map(({ at, ts }) => at - ts);
  console.log(`| webhook delivery latency (publication events, ${rate}/s, signed, verified) | ${summary(latencies)} |`);
  for (const ws of publishers) ws.close();
  await server.close();
  await integrations.close();
  await rx.close();
}

/** Events enqueued all at once: how fast the dispatcher drains them (signing, POST, 2xx). */
async function webhookThroughput(concurrency: number): Promise<void> {
  const count = quick ? 1000 : 5000;
  const rx = await receiver();
  const dispatcher = new WebhookDispatcher({
    url: rx.url,
    secrets: [SECRET],
    timeoutMs: 10_000,
    maxAttempts: 3,
    retryBaseMs: 100,
    retryMaxMs: 1000,
    queueSize: count,
    concurrency,
    deadLetter: new DeadLetterLog(undefined, pino({ level: 'silent' })),
    logger: pino({ level: 'silent' }),
  });
  const started = performance.now();
  for (let i = 0; i < count; i++) dispatcher.enqueue(createEvent('user.online', `{"userId":"u${i}"}`));
  await until(() => rx.arrivals.size === count, 'all webhooks');
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `| webhook throughput (${count} queued at once, concurrency ${concurrency}) | ${(count / seconds).toFixed(0)} events/s |`,
  );
  await dispatcher.close();
  await rx.close();
}

async function offlineLag(): Promise<void> {
  const users = quick ? 50 : 200;
  const delayS = 1;
  const rx = await receiver();
  const { server, url } = await hub();
  const integrations = await startIntegrations(server, {
    webhooks: { url: rx.url, secret: SECRET, events: ['user.offline'], offlineDelay: delayS },
  });
  const closedAt = new Map<string, number>();
  const sockets = await Promise.all(
    Array.from({ length: users }, async (_, i) => [`u${i}`, await connectWs(url, await jwt(`u${i}`))] as const),
  );
  await sleep(200);
  for (const [user, ws] of sockets) {
    closedAt.set(user, Date.now());
    ws.close();
    await sleep(5);
  }
  await until(() => rx.arrivals.size === users, 'all user.offline', 30_000);
  const lags = [...rx.arrivals.values()].map(
    ({ at, data }) => at - (closedAt.get(data.userId ?? '') ?? NaN) - delayS * 1000,
  );
  console.log(`| user.offline lag beyond offlineDelay (sweepInterval 1 s, memory registry) | ${summary(lags)} |`);
  await server.close();
  await integrations.close();
  await rx.close();
}

const SHARED_STATE = { redis: 'redis://127.0.0.1:6379', nats: 'nats://127.0.0.1:4222' } as const;

async function pushThroughput(store: 'memory' | 'redis' | 'nats'): Promise<void> {
  const pushes = quick ? 300 : 2000;
  const users = 100;
  // The push service runs in a worker thread (another event loop, like a remote service): 201 to all.
  let received = 0;
  const service = new Worker(PUSH_SERVICE, { eval: true });
  const port = await new Promise<number>((resolve) =>
    service.on('message', (m: { port?: number; n?: number }) => {
      if (m.port !== undefined) resolve(m.port);
      else received += m.n ?? 0;
    }),
  );
  const { server, url } = await hub();
  const namespace = `measure-${randomUUID().slice(0, 8)}`;
  const integrations = await startIntegrations(server, {
    ...(store === 'memory' ? {} : { registry: SHARED_STATE[store], namespace }),
    push: {
      vapid: { subject: 'mailto:ops@example.com' },
      allowInsecureEndpoints: true,
      endpointHosts: ['127.0.0.1'],
      rateLimit: null,
    },
  });
  const { createECDH } = await import('node:crypto');
  for (let u = 0; u < users; u++) {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const sub = {
      endpoint: `http://127.0.0.1:${port}/push/${u}`,
      keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
    };
    const r = await fetch(`${url}/api/push/subscriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await jwt(`user${u}`)}`, 'content-type': 'application/json' },
      body: JSON.stringify(sub),
    });
    if (r.status !== 200) throw new Error(`subscription: ${r.status} ${await r.text()}`);
  }
  // A publish with the `push` extension field (PublishInput lists only the core fields).
  const publishWithPush = (i: number, push: PushSection): Promise<unknown> => {
    const input: PublishInput & { push: PushSection } = { channel: `user:user${i % users}`, data: { i }, push };
    return server.hub.publish(input);
  };
  // Warm-up (JIT, connections, first VAPID signature), not timed.
  const warmup = 500;
  for (let i = 0; i < warmup; i++) await publishWithPush(i, { title: 'warm-up' });
  await until(() => received === warmup, 'the warm-up pushes');
  received = 0;
  const started = performance.now();
  for (let i = 0; i < pushes; i++) {
    await publishWithPush(i, { title: 'New message', body: `message ${i}`, url: '/inbox' });
  }
  await until(() => received === pushes, 'all pushes');
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `| Web Push throughput (${store} store${store === 'memory' ? '' : ' and registry'}, aes128gcm + VAPID, concurrency 16) | ${(pushes / seconds).toFixed(0)} pushes/s (${pushes} in ${seconds.toFixed(2)} s) |`,
  );
  await server.close();
  await integrations.close();
  await service.terminate();
  if (store === 'redis') {
    const { Redis } = await import('ioredis');
    const redis = new Redis('redis://127.0.0.1:6379');
    const keys = await redis.keys(`herald:{${namespace}}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
  if (store === 'nats') {
    const { connect } = await import('nats');
    const nc = await connect({ servers: '127.0.0.1:4222' });
    const jsm = await nc.jetstreamManager();
    const doomed: string[] = [];
    for await (const name of jsm.streams.names()) if (name.includes(`_${namespace}`)) doomed.push(name);
    for (const name of doomed) await jsm.streams.delete(name);
    await nc.close();
  }
}

const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const [load1] = loadavg();
console.log(
  `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load average ${load1?.toFixed(1)} at start${quick ? ' (--quick)' : ''}\n`,
);
console.log('| measurement | result |\n|---|---|');
if (only === undefined || only === 'webhooks') {
  await webhookLatency();
  await webhookThroughput(8);
  await webhookThroughput(32);
  await offlineLag();
}
if (only === undefined || only === 'push') {
  await pushThroughput('memory');
  if (withRedis) await pushThroughput('redis');
  if (withNats) await pushThroughput('nats');
}
