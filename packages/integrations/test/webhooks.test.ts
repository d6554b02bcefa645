/**
 * Webhooks against a real local receiver: signatures and replay protection, retries with backoff,
 * the bounded drop-oldest queue, the dead-letter log, metrics; then end to end from real hub
 * connections, on one node and across two nodes sharing Redis or NATS.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Redis } from 'ioredis';
import { connect } from 'nats';
import {
  DeadLetterLog,
  DropOldestQueue,
  NatsOutbox,
  RedisOutbox,
  WebhookDispatcher,
  WebhookSignatureError,
  backoffDelay,
  createEvent,
  signWebhook,
  startIntegrations,
  verifyWebhook,
  type Integrations,
  type Outbox,
  type WebhookDispatcherOptions,
} from '../src/index.ts';
import { verifyWebhook as verifyStandalone } from '@herald/integrations/webhook-signature';
import { api, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { requireService } from '../../../test/support/services.ts';
import { deleteNatsNamespace, deleteRedisPrefix, until as untilAsync } from '../../../test/cluster/support.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';
import { WebhookReceiver } from './support/receivers.ts';

const SECRET = 'whsec-test-0123456789abcdef';
const silent = pino({ level: 'silent' });
const RUN = randomUUID().slice(0, 8);

describe('webhook signatures', () => {
  const body = '{"id":"e1","type":"user.online","ts":1,"data":{"userId":"alice"}}';

  it('verifies what it signed, with the standalone import too', () => {
    const header = signWebhook(body, SECRET);
    assert.match(header, /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.deepEqual(verifyWebhook(body, header, SECRET), JSON.parse(body));
    assert.deepEqual(verifyStandalone(Buffer.from(body), header, SECRET), JSON.parse(body));
  });

  it('refuses a changed body, a wrong secret, a missing or malformed header', () => {
    const header = signWebhook(body, SECRET);
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (error) {
        assert.ok(error instanceof WebhookSignatureError);
        return error.code;
      }
      return 'accepted';
    };
    assert.equal(
      code(() => verifyWebhook(body.replace('alice', 'mallory'), header, SECRET)),
      'signature_mismatch',
    );
    assert.equal(
      code(() => verifyWebhook(body, header, 'another-secret-0123456789')),
      'signature_mismatch',
    );
    assert.equal(
      code(() => verifyWebhook(body, undefined, SECRET)),
      'missing_signature',
    );
    assert.equal(
      code(() => verifyWebhook(body, 'v1=abc', SECRET)),
      'malformed_signature',
    );
  });

  it('refuses old and future timestamps (replays), within a tolerance', () => {
    const now = Date.now();
    const old = signWebhook(body, SECRET, Math.floor(now / 1000) - 301);
    const future = signWebhook(body, SECRET, Math.floor(now / 1000) + 301);
    const fresh = signWebhook(body, SECRET, Math.floor(now / 1000) - 299);
    assert.throws(() => verifyWebhook(body, old, SECRET, { now }), { code: 'timestamp_out_of_tolerance' });
    assert.throws(() => verifyWebhook(body, future, SECRET, { now }), { code: 'timestamp_out_of_tolerance' });
    assert.doesNotThrow(() => verifyWebhook(body, fresh, SECRET, { now }));
    assert.doesNotThrow(() => verifyWebhook(body, old, SECRET, { now, toleranceSeconds: 600 }));
  });

  it('signs with every secret while one is being rotated', () => {
    const header = signWebhook(body, ['old-secret-0123456789', 'new-secret-0123456789']);
    assert.equal(header.split(',v1=').length, 3);
    assert.doesNotThrow(() => verifyWebhook(body, header, 'old-secret-0123456789'));
    assert.doesNotThrow(() => verifyWebhook(body, header, 'new-secret-0123456789'));
  });
});

describe('webhook building blocks', () => {
  it('backs off exponentially with jitter, within the cap', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(60_000, 500 * 2 ** (attempt - 1));
      assert.equal(
        backoffDelay(attempt, 500, 60_000, () => 0),
        ceiling / 2,
      );
      assert.equal(
        backoffDelay(attempt, 500, 60_000, () => 1),
        ceiling,
      );
    }
  });

  it('a drop-oldest queue gives up its oldest item when full', () => {
    const q = new DropOldestQueue<number>(3);
    assert.equal(q.push(1), undefined);
    q.push(2);
    q.push(3);
    assert.equal(q.push(4), 1);
    assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], [2, 3, 4, undefined]);
    for (let i = 0; i < 5000; i++) q.push(i);
    assert.equal(q.length, 3);
    assert.deepEqual(q.drain(), [4997, 4998, 4999]);
  });
});

describe('webhook dispatcher', () => {
  let receiver: WebhookReceiver;
  let dir: string;
  before(async () => {
    receiver = await new WebhookReceiver().start();
    dir = await mkdtemp(join(tmpdir(), 'herald-webhooks-'));
  });
  after(async () => {
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  });

  const dispatcher = (registry: Registry, o: Partial<WebhookDispatcherOptions> = {}): WebhookDispatcher =>
    new WebhookDispatcher({
      url: receiver.url,
      secrets: [SECRET],
      timeoutMs: 2000,
      maxAttempts: 4,
      retryBaseMs: 20,
      retryMaxMs: 100,
      queueSize: 100,
      concurrency: 4,
      deadLetter: new DeadLetterLog(join(dir, `dead-${randomUUID()}.jsonl`), silent),
      logger: silent,
      registry,
      ...o,
    });

  const metric = async (registry: Registry, name: string): Promise<string> =>
    (await registry.getSingleMetricAsString(name)).replace(/^#.*\n/gm, '');

  it('POSTs the event signed; the receiver verifies it', async () => {
    const registry = new Registry();
    const d = dispatcher(registry);
    const event = createEvent('user.online', '{"userId":"sig"}');
    d.enqueue(event);
    await until(() => receiver.received.some((r) => r.event.id === event.id), 'the webhook');
    const got = receiver.received.find((r) => r.event.id === event.id)!;
    assert.equal(got.raw, event.body);
    assert.deepEqual(verifyWebhook(got.raw, got.headers['herald-signature'], SECRET), JSON.parse(event.body));
    assert.equal(got.headers['herald-event-id'], event.id);
    assert.equal(got.headers['herald-event-type'], 'user.online');
    assert.equal(got.headers['content-type'], 'application/json');
    await d.close();
    assert.match(await metric(registry, 'herald_webhook_delivered_total'), / 1$/m);
  });

  it('retries 5xx with backoff, the same event each time, until the backend accepts it', async () => {
    const registry = new Registry();
    const d = dispatcher(registry);
    const event = createEvent('user.offline', '{"userId":"retry"}');
    receiver.respond = (e, attempt) => (e.id === event.id && attempt < 3 ? 503 : 200);
    d.enqueue(event);
    await until(() => receiver.accepted().some((e) => e.id === event.id), 'the third attempt');
    const attempts = receiver.received.filter((r) => r.event.id === event.id);
    assert.deepEqual(
      attempts.map((r) => [r.status, r.headers['herald-attempt'], r.raw]),
      [
        [503, '1', event.body],
        [503, '2', event.body],
        [200, '3', event.body],
      ],
    );
    await d.close();
    const text = await metric(registry, 'herald_webhook_attempts_total');
    assert.match(text, /outcome="http_error"} 2$/m);
    assert.match(text, /outcome="success"} 1$/m);
    receiver.respond = () => 200;
  });

  it('dead-letters a rejected event at once, and an event whose attempts ran out, to a JSON-lines file', async () => {
    const registry = new Registry();
    const file = join(dir, 'dead.jsonl');
    const d = dispatcher(registry, { deadLetter: new DeadLetterLog(file, silent), maxAttempts: 2 });
    const rejected = createEvent('channel.occupied', '{"channel":"c:rejected"}');
    const failing = createEvent('channel.vacated', '{"channel":"c:failing"}');
    receiver.respond = (e) => (e.id === rejected.id ? 400 : e.id === failing.id ? 500 : 200);
    d.enqueue(rejected);
    d.enqueue(failing);
    await until(() => receiver.received.filter((r) => r.event.id === failing.id).length === 2, 'two attempts');
    await until(() => d.inflight === 0 && d.depth === 0, 'both given up');
    await d.close();
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const byId = new Map(lines.map((l) => [l.event.id, l]));
    assert.equal(byId.get(rejected.id)?.reason, 'rejected');
    assert.equal(byId.get(rejected.id)?.attempts, 1);
    assert.equal(byId.get(rejected.id)?.lastStatus, 400);
    assert.equal(byId.get(failing.id)?.reason, 'attempts_exhausted');
    assert.equal(byId.get(failing.id)?.attempts, 2);
    assert.deepEqual(byId.get(failing.id)?.event, JSON.parse(failing.body));
    const text = await metric(registry, 'herald_webhook_dead_letters_total');
    assert.match(text, /reason="rejected"} 1$/m);
    assert.match(text, /reason="attempts_exhausted"} 1$/m);
    receiver.respond = () => 200;
  });

  it('keeps at most queueSize events: the oldest queued ones are dead-lettered when full', async () => {
    const registry = new Registry();
    const file = join(dir, 'full.jsonl');
    const d = dispatcher(registry, { deadLetter: new DeadLetterLog(file, silent), queueSize: 3, concurrency: 1 });
    let release = (): void => undefined;
    receiver.gate = new Promise<void>((r) => (release = r));
    const events = Array.from({ length: 6 }, (_, i) => createEvent('user.online', `{"userId":"q${i}"}`));
    d.enqueue(events[0]!);
    await until(() => d.inflight === 1, 'the first event in flight');
    for (const e of events.slice(1)) d.enqueue(e);
    assert.equal(d.depth, 3);
    receiver.gate = undefined;
    release();
    await d.close();
    const dead = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      dead.map((l) => [l.reason, l.event.data.userId]),
      [
        ['queue_full', 'q1'],
        ['queue_full', 'q2'],
      ],
    );
    const delivered = receiver.accepted().map((e) => e.data.userId);
    for (const id of ['q0', 'q3', 'q4', 'q5']) assert.ok(delivered.includes(id), `${id} delivered`);
    assert.match(await metric(registry, 'herald_webhook_dead_letters_total'), /reason="queue_full"} 2$/m);
  });
});

for (const shared of ['redis', 'nats'] as const) {
  describe(`webhook dispatcher on a ${shared} outbox`, () => {
    const space = `d${RUN}${shared}`;
    let receiver: WebhookReceiver | undefined;
    let dir: string | undefined;
    const outboxes: Outbox[] = [];
    const outbox = (): Outbox => {
      const o =
        shared === 'redis'
          ? new RedisOutbox({
              url: 'redis://127.0.0.1:6379',
              prefix: `herald:{${space}}:webhooks:`,
              capacity: 100,
              claimIdleMs: 3000,
            })
          : new NatsOutbox({ url: 'nats://127.0.0.1:4222', namespace: space, capacity: 100, claimIdleMs: 3000 });
      outboxes.push(o);
      return o;
    };
    after(async () => {
      for (const o of outboxes) await o.close().catch(() => undefined);
      await receiver?.close();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
      if (outboxes.length === 0) return;
      if (shared === 'redis') await deleteRedisPrefix('redis://127.0.0.1:6379', `herald:{${space}}`);
      else {
        const nc = await connect({ servers: '127.0.0.1:4222' });
        await (await nc.jetstreamManager()).streams.delete(`herald_webhooks_${space}`).catch(() => undefined);
        await nc.close();
      }
    });

    const metric = async (registry: Registry, name: string): Promise<string> =>
      (await registry.getSingleMetricAsString(name)).replace(/^#.*\n/gm, '');
    const start = async (
      registry: Registry,
      file: string,
      o: Partial<WebhookDispatcherOptions> = {},
    ): Promise<WebhookDispatcher> =>
      new WebhookDispatcher({
        url: (receiver as WebhookReceiver).url,
        secrets: [SECRET],
        timeoutMs: 2000,
        maxAttempts: 3,
        retryBaseMs: 50,
        retryMaxMs: 200,
        queueSize: 100,
        concurrency: 4,
        deadLetter: new DeadLetterLog(file, silent),
        logger: silent,
        registry,
        outbox: outbox(),
        ...o,
      }).start();

    it('retries through the outbox with the same id and body; dead letters leave it', async (t) => {
      if (!(await requireService(t, shared))) return;
      receiver = await new WebhookReceiver().start();
      dir = await mkdtemp(join(tmpdir(), 'herald-webhooks-'));
      const rx = receiver;
      const file = join(dir, 'dead.jsonl');
      const registry = new Registry();
      const d = await start(registry, file);
      const retried = createEvent('user.offline', '{"userId":"shared-retry"}');
      const rejected = createEvent('user.online', '{"userId":"shared-rejected"}');
      const exhausted = createEvent('user.online', '{"userId":"shared-exhausted"}');
      rx.respond = (e, attempt) =>
        e.id === retried.id
          ? attempt < 3
            ? 503
            : 200
          : e.id === rejected.id
            ? 410
            : e.id === exhausted.id
              ? 500
              : 200;
      for (const event of [retried, rejected, exhausted]) await d.enqueue(event);
      await until(() => rx.accepted().some((e) => e.id === retried.id), 'the third attempt', 10_000);
      await until(() => rx.received.filter((r) => r.event.id === exhausted.id).length === 3, 'three attempts', 10_000);
      assert.deepEqual(
        rx.received.filter((r) => r.event.id === retried.id).map((r) => [r.status, r.headers['herald-attempt'], r.raw]),
        [
          [503, '1', retried.body],
          [503, '2', retried.body],
          [200, '3', retried.body],
        ],
      );
      await untilAsync(async () => (await d.queueDepth()) === 0 && d.inflight === 0, 'the outbox empty', 10_000);
      await d.close();
      const dead = (await readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        dead.map((l) => [l.event.id, l.reason, l.attempts]).sort(),
        [
          [exhausted.id, 'attempts_exhausted', 3],
          [rejected.id, 'rejected', 1],
        ].sort(),
      );
      assert.match(await metric(registry, 'herald_webhook_delivered_total'), / 1$/m);
    });

    it('a graceful close keeps undelivered events in the outbox: the next dispatcher sends them', async (t) => {
      if (!(await requireService(t, shared)) || receiver === undefined || dir === undefined) return;
      const rx = receiver;
      const file = join(dir, 'close.jsonl');
      // The retry waits in the outbox longer than a claim lasts: it is there when the dispatcher closes.
      const first = await start(new Registry(), file, { retryBaseMs: 2000, retryMaxMs: 2000 });
      const event = createEvent('channel.vacated', '{"channel":"shared-close"}');
      rx.respond = (e) => (e.id === event.id ? 503 : 200);
      await first.enqueue(event);
      await until(() => rx.received.some((r) => r.event.id === event.id), 'a first attempt', 10_000);
      await first.close(500);
      await readFile(file, 'utf8').then(
        (text) => assert.ok(!text.includes(event.id), 'not dead-lettered on close'),
        () => undefined,
      );
      rx.respond = () => 200;
      const next = await start(new Registry(), file);
      await until(() => rx.accepted().some((e) => e.id === event.id), 'delivery by the next dispatcher', 10_000);
      const attempts = rx.received
        .filter((r) => r.event.id === event.id)
        .map((r) => Number(r.headers['herald-attempt']));
      assert.ok((attempts.at(-1) ?? 0) >= 2, `a later attempt (${attempts.join(', ')})`);
      await next.close();
    });
  });
}

/** Events of the receiver about one id (user or channel), in arrival order. */
function about(receiver: WebhookReceiver, id: string): string[] {
  return receiver
    .accepted()
    .filter((e) => e.data.userId === id || e.data.channel === id)
    .map((e) => e.type);
}

describe('webhooks from a hub (one node, memory registry)', () => {
  let receiver: WebhookReceiver;
  let hub: TestHub;
  let integrations: Integrations;
  before(async () => {
    receiver = await new WebhookReceiver().start();
    hub = await startHub();
    integrations = await startIntegrations(hub.server, {
      sweepInterval: 0.05,
      webhooks: {
        url: receiver.url,
        secret: SECRET,
        events: ['user.online', 'user.offline', 'channel.occupied', 'channel.vacated', 'publication'],
        channels: ['room:*'],
        offlineDelay: 1,
        vacatedDelay: 1,
        retryBase: 0.05,
      },
    });
  });
  after(async () => {
    await hub.close();
    await integrations.close();
    await receiver.close();
  });

  it('user online once for several tabs; a reload is not offline-online; offline after the delay', async () => {
    const user = `alice-${randomUUID()}`;
    const jwt = await token({ sub: user });
    const tab1 = await WsTestClient.connect(hub.wsUrl, jwt);
    const tab2 = await WsTestClient.connect(hub.wsUrl, jwt);
    await until(() => about(receiver, user).length === 1, 'user.online');
    tab1.close();
    await tab1.closed;
    // A reload: the tab closes and comes back well within the 1 s delay.
    tab2.close();
    await tab2.closed;
    const reloaded = await WsTestClient.connect(hub.wsUrl, jwt);
    await sleep(1300);
    assert.deepEqual(about(receiver, user), ['user.online']);
    reloaded.close();
    await until(() => about(receiver, user).length === 2, 'user.offline');
    assert.deepEqual(about(receiver, user), ['user.online', 'user.offline']);
    const offline = receiver.accepted('user.offline').find((e) => e.data.userId === user);
    assert.deepEqual(Object.keys(offline).sort(), ['data', 'id', 'ts', 'type']);
  });

  it('channel occupied and vacated, for matching channels only; client publications, not API ones', async () => {
    const room = `room:${randomUUID()}`;
    const other = `lobby:${randomUUID()}`;
    const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: `bob-${RUN}` }));
    await client.ok('subscribe', { channel: room });
    await client.ok('subscribe', { channel: other });
    await until(() => about(receiver, room).length === 1, 'channel.occupied');
    await client.ok('publish', { channel: room, data: { text: 'hi' }, event: 'chat' });
    assert.equal((await api(hub, 'POST', '/api/publish', { channel: room, data: { from: 'backend' } })).status, 200);
    await until(() => receiver.accepted('publication').length === 1, 'the publication webhook');
    const pub = receiver.accepted('publication')[0];
    assert.deepEqual(pub.data.publisher, { userId: `bob-${RUN}` });
    assert.equal(pub.data.publication.channel, room);
    assert.deepEqual(pub.data.publication.data, { text: 'hi' });
    assert.equal(pub.data.publication.event, 'chat');
    client.close();
    await until(() => about(receiver, room).length === 2, 'channel.vacated');
    assert.deepEqual(about(receiver, room), ['channel.occupied', 'channel.vacated']);
    assert.deepEqual(about(receiver, other), [], 'lobby:* is not in the channels filter');
    assert.equal(receiver.accepted('publication').length, 1, 'the API-key publication is not echoed back');
  });

  it('exports its metrics on the hub /metrics', async () => {
    const text = (await fetch(`${hub.url}/metrics`).then((r) => r.text())).split('\n');
    assert.ok(text.some((l) => /^herald_webhook_delivered_total \d+/.test(l)));
    assert.ok(text.some((l) => l.startsWith('herald_webhook_queue_depth ')));
    assert.ok(text.some((l) => l.startsWith('herald_webhook_delivery_seconds_bucket')));
  });
});

for (const shared of ['redis', 'nats'] as const) {
  describe(`webhooks across two hub nodes sharing ${shared}`, () => {
    const namespace = `t${RUN}${shared}`;
    const url = shared === 'redis' ? 'redis://127.0.0.1:6379' : 'nats://127.0.0.1:4222';
    let receiver: WebhookReceiver;
    const nodes: Array<{ hub: TestHub; integrations: Integrations }> = [];
    after(async () => {
      for (const n of nodes) {
        await n.hub.close();
        await n.integrations.close();
      }
      await receiver?.close();
      if (shared === 'redis') {
        const redis = new Redis(url);
        const keys = await redis.keys(`herald:{${namespace}}:*`);
        if (keys.length > 0) await redis.del(...keys);
        await redis.quit();
      } else {
        const nc = await connect({ servers: url });
        const jsm = await nc.jetstreamManager();
        for (const stream of [`KV_herald_presence_${namespace}`, `herald_webhooks_${namespace}`]) {
          await jsm.streams.delete(stream).catch(() => undefined);
        }
        await nc.close();
      }
    });

    it('aggregates a user and a channel over both nodes: one event per transition, from one node', async (t) => {
      if (!(await requireService(t, shared))) return;
      receiver = await new WebhookReceiver().start();
      for (let i = 0; i < 2; i++) {
        const hub = await startHub();
        const integrations = await startIntegrations(hub.server, {
          registry: url,
          namespace,
          sweepInterval: 0.05,
          webhooks: { url: receiver.url, secret: SECRET, offlineDelay: 0.5, vacatedDelay: 0.5 },
        });
        nodes.push({ hub, integrations });
      }
      const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
      const user = `carol-${randomUUID()}`;
      const room = `room:${randomUUID()}`;
      const jwt = await token({ sub: user });
      const onA = await WsTestClient.connect(a.hub.wsUrl, jwt);
      await onA.ok('subscribe', { channel: room });
      await until(() => about(receiver, user).length === 1 && about(receiver, room).length === 1, 'online, occupied');
      const onB = await WsTestClient.connect(b.hub.wsUrl, jwt);
      await onB.ok('subscribe', { channel: room });
      onA.close();
      await onA.closed;
      await sleep(800); // longer than the delays: nothing may fire while B holds both
      assert.deepEqual(about(receiver, user), ['user.online']);
      assert.deepEqual(about(receiver, room), ['channel.occupied']);
      onB.close();
      await until(() => about(receiver, user).length === 2 && about(receiver, room).length === 2, 'offline, vacated');
      await sleep(300); // a few more sweeps on both nodes: no duplicate may follow
      assert.deepEqual(about(receiver, user), ['user.online', 'user.offline']);
      assert.deepEqual(about(receiver, room), ['channel.occupied', 'channel.vacated']);
      const ids = receiver.accepted().map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length, 'every event id once');
    });
  });
}

for (const kind of ['redis', 'nats'] as const) {
  describe(`webhooks on two hub nodes with the ${kind} broker`, () => {
    const prefix = `hi_${RUN}_${kind}`;
    const brokerUrl =
      kind === 'redis' ? `redis://127.0.0.1:6379?prefix=${prefix}` : `nats://127.0.0.1:4222?prefix=${prefix}`;
    const nodes: Array<{ hub: TestHub; integrations: Integrations }> = [];
    let receiver: WebhookReceiver | undefined;
    after(async () => {
      for (const n of nodes) {
        await n.hub.close();
        await n.integrations.close();
      }
      await receiver?.close();
      if (nodes.length === 0) return;
      if (kind === 'redis') await deleteRedisPrefix('redis://127.0.0.1:6379', prefix);
      else await deleteNatsNamespace('nats://127.0.0.1:4222', prefix);
      if (kind === 'redis') await deleteRedisPrefix('redis://127.0.0.1:6379', `herald:{${prefix}}`);
      else {
        const nc = await connect({ servers: '127.0.0.1:4222' });
        const jsm = await nc.jetstreamManager();
        for (const stream of [`KV_herald_presence_${prefix}`, `herald_webhooks_${prefix}`]) {
          await jsm.streams.delete(stream).catch(() => undefined);
        }
        await nc.close();
      }
    });

    it('state follows the broker URL: one event per transition, one webhook per client publication', async (t) => {
      if (!(await requireService(t, kind))) return;
      receiver = await new WebhookReceiver().start();
      const { createRedisBackend } = await import('@herald/broker-redis');
      const { createNatsBackend } = await import('@herald/broker-nats');
      for (let i = 0; i < 2; i++) {
        const history = { size: 100, ttlSeconds: 60 };
        const backend =
          kind === 'redis'
            ? await createRedisBackend({ url: brokerUrl, history })
            : await createNatsBackend({ url: brokerUrl, history, storage: 'memory' });
        const hub = await startHub(backend);
        const integrations = await startIntegrations(
          hub.server,
          {
            sweepInterval: 0.05,
            webhooks: {
              url: receiver.url,
              secret: SECRET,
              events: ['user.online', 'user.offline', 'channel.occupied', 'channel.vacated', 'publication'],
              offlineDelay: 0.5,
              vacatedDelay: 0.5,
            },
          },
          { brokerUrl },
        );
        assert.equal(integrations.tracker?.registry.name, kind);
        nodes.push({ hub, integrations });
      }
      const rx = receiver;
      const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
      const room = `room:${randomUUID()}`;
      const alice = await WsTestClient.connect(a.hub.wsUrl, await token({ sub: `alice-${RUN}` }));
      const bob = await WsTestClient.connect(b.hub.wsUrl, await token({ sub: `bob-${RUN}` }));
      await alice.ok('subscribe', { channel: room });
      await bob.ok('subscribe', { channel: room });
      await bob.ok('publish', { channel: room, data: { text: 'across nodes' } });
      await until(() => alice.publications(room).length === 1, 'the publication on the other node');
      await until(() => rx.accepted('publication').some((e) => e.data.publication.channel === room), 'the webhook');
      alice.close();
      bob.close();
      await until(() => about(rx, room).length === 2, 'occupied, vacated');
      await until(() => about(rx, `bob-${RUN}`).length === 2 && about(rx, `alice-${RUN}`).length === 2, 'offline');
      await sleep(300);
      assert.deepEqual(about(rx, room), ['channel.occupied', 'channel.vacated']);
      assert.deepEqual(about(rx, `alice-${RUN}`), ['user.online', 'user.offline']);
      assert.equal(rx.accepted('publication').filter((e) => e.data.publication.channel === room).length, 1);
    });
  });
}
