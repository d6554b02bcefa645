/**
 * Ingress bridges against real servers: Mosquitto, NATS JetStream (and core NATS), Redis Streams.
 * Each checks the mapping onto channels, decoding, dropped invalid messages, and that a restart
 * that re-delivers messages does not duplicate publications (idempotency keys).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { Redis } from 'ioredis';
import { connect, headers } from 'nats';
import { compileTemplate, decodePayload, mqttPattern, natsPattern, startIntegrations } from '../src/index.ts';
import { api, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { requireService } from '../../../test/support/services.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const RUN = randomUUID().slice(0, 8);

async function history(hub: TestHub, channel: string): Promise<any[]> {
  const answer = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history?limit=1000`);
  return answer.body.publications ?? [];
}

async function bridgeCount(hub: TestHub, result: string): Promise<number> {
  const text = await hub.server.metrics.getSingleMetricAsString('herald_bridge_messages_total');
  return Number(new RegExp(`result="${result}"} (\\d+)`).exec(text)?.[1] ?? 0);
}

/** Polls an async condition every 20 ms; rejects after 8 s naming `what`. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 8000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('bridge mapping', () => {
  it('matches MQTT filters with captures for + and #', () => {
    const p = mqttPattern('sensors/+/temp/#');
    assert.equal(p.captures, 2);
    assert.deepEqual(p.match('sensors/s1/temp/room/2'), ['s1', 'room/2']);
    assert.deepEqual(p.match('sensors/s1/temp'), ['s1', ''], '# also matches the parent level');
    assert.equal(p.match('sensors/s1/humidity'), undefined);
    assert.equal(mqttPattern('+/x').match('$SYS/x'), undefined, 'wildcards do not match $ topics');
    assert.deepEqual(mqttPattern('a/b').match('a/b'), []);
    assert.equal(mqttPattern('a/+').match('a/b/c'), undefined);
    assert.throws(() => mqttPattern('a/#/b'), /not a valid MQTT topic filter/);
    assert.throws(() => mqttPattern('a/b+'), /not a valid MQTT topic filter/);
  });

  it('matches NATS subjects with captures for * and >', () => {
    const p = natsPattern('sensors.*.temp.>');
    assert.deepEqual(p.match('sensors.s1.temp.a.b'), ['s1', 'a.b']);
    assert.equal(p.match('sensors.s1.temp'), undefined, '> needs at least one token');
    assert.throws(() => natsPattern('a.>.b'), /not a valid NATS subject/);
  });

  it('fills templates and refuses references the pattern cannot give', () => {
    const t = compileTemplate('sensors:{1}:{topic}', 1, ['topic']);
    assert.equal(t({ captures: ['s1'], named: { topic: 'x/y' } }), 'sensors:s1:x/y');
    assert.throws(() => compileTemplate('sensors:{2}', 1, []), /uses \{2\} but the pattern has 1/);
    assert.throws(() => compileTemplate('orders:{id}', 0, ['stream', 'field.']), /uses \{id\}/);
    assert.equal(compileTemplate('o:{field.id}', 0, ['field.'])({ captures: [], named: { 'field.id': '7' } }), 'o:7');
  });

  it('decodes JSON, text, or JSON when it parses', () => {
    const bytes = Buffer.from('{"t":21.5}');
    assert.deepEqual(decodePayload(bytes, 'json'), { data: { t: 21.5 } });
    assert.deepEqual(decodePayload(bytes, 'text'), { data: '{"t":21.5}' });
    assert.deepEqual(decodePayload(Buffer.from('on'), 'auto'), { data: 'on' });
    assert.ok('error' in decodePayload(Buffer.from('on'), 'json'));
  });
});

describe('MQTT bridge (Mosquitto)', () => {
  const prefix = `herald-test/${RUN}`;
  const clientId = `herald-test-${RUN}`;
  const config = {
    bridges: [
      {
        type: 'mqtt',
        name: 'sensors',
        url: 'mqtt://127.0.0.1:1883',
        clientId,
        routes: [
          { topic: `${prefix}/sensors/+/reading`, channel: 'sensors:{1}', event: 'reading', decode: 'json' },
          { topic: `${prefix}/status/#`, channel: 'status:{1}', decode: 'text' },
        ],
      },
    ],
  };
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('maps topics onto channels, decodes payloads, drops what cannot be a channel', async (t) => {
    if (!(await requireService(t, 'mosquitto'))) return;
    const hub = await startHub();
    const integrations = await startIntegrations(hub.server, config);
    const producer = await mqtt.connectAsync('mqtt://127.0.0.1:1883');
    cleanups.push(async () => {
      // Forget the bridge's persistent session.
      const c = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId, clean: true, protocolVersion: 5 });
      await c.endAsync();
    });
    const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'viewer' }));
    await client.ok('subscribe', { channel: 'sensors:s1' });
    await producer.publishAsync(`${prefix}/sensors/s1/reading`, JSON.stringify({ t: 21.5, seq: 1 }), { qos: 1 });
    await until(() => client.publications('sensors:s1').length === 1, 'the reading');
    const pub = client.publications('sensors:s1')[0];
    assert.deepEqual([pub.data, pub.event], [{ t: 21.5, seq: 1 }, 'reading']);
    // A topic level with a space gives no valid channel: dropped and counted; the next one flows.
    await producer.publishAsync(`${prefix}/status/bad name`, 'x', { qos: 1 });
    await producer.publishAsync(`${prefix}/status/door`, 'open', { qos: 1 });
    await eventually(async () => (await history(hub, 'status:door')).length === 1, 'the status');
    assert.equal((await history(hub, 'status:door'))[0].data, 'open');
    assert.equal(await bridgeCount(hub, 'invalid'), 1);
    client.close();
    // Closed before the next test: two bridges with one client id would take the session from each other.
    await integrations.close();
    await producer.endAsync();
    await hub.close();
  });

  it('publishes an exact redelivery once, and gets what was sent while it was down (persistent session)', async (t) => {
    if (!(await requireService(t, 'mosquitto'))) return;
    const hub = await startHub();
    const producer = await mqtt.connectAsync('mqtt://127.0.0.1:1883');
    cleanups.push(
      () => hub.close(),
      () => producer.endAsync(),
    );
    let integrations = await startIntegrations(hub.server, config);
    const reading = JSON.stringify({ t: 19, seq: 1 });
    await producer.publishAsync(`${prefix}/sensors/s2/reading`, reading, { qos: 1 });
    // The same message again, as a broker re-sends an unacknowledged QoS 1 message.
    await producer.publishAsync(`${prefix}/sensors/s2/reading`, reading, { qos: 1 });
    await producer.publishAsync(`${prefix}/sensors/s2/reading`, JSON.stringify({ t: 19, seq: 2 }), { qos: 1 });
    await eventually(async () => (await history(hub, 'sensors:s2')).length === 2, 'two readings');
    // The metric counts what happened: two published, the redelivery a duplicate (issue 14, item 17).
    await eventually(async () => (await bridgeCount(hub, 'duplicate')) === 1, 'the redelivery counted');
    assert.equal(await bridgeCount(hub, 'published'), 2);
    await integrations.close();
    // While the bridge is away, the broker queues for its session.
    for (let seq = 3; seq <= 5; seq++) {
      await producer.publishAsync(`${prefix}/sensors/s2/reading`, JSON.stringify({ t: 19, seq }), { qos: 1 });
    }
    integrations = await startIntegrations(hub.server, config);
    cleanups.push(() => integrations.close());
    await eventually(async () => (await history(hub, 'sensors:s2')).length === 5, 'the queued readings');
    await sleep(200);
    const seqs = (await history(hub, 'sensors:s2')).map((p) => p.data.seq);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
    assert.equal(await bridgeCount(hub, 'published'), 5);
    assert.equal(await bridgeCount(hub, 'duplicate'), 1);
  });
});

describe('NATS bridge', () => {
  const stream = `HT_${RUN}`;
  const subjects = `ht.${RUN}`;
  after(async () => {
    const nc = await connect({ servers: '127.0.0.1:4222' }).catch(() => undefined);
    if (nc === undefined) return;
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  it('JetStream: maps subjects, acks after storing, and a replay of the stream is not published twice', async (t) => {
    if (!(await requireService(t, 'nats'))) return;
    const nc = await connect({ servers: '127.0.0.1:4222' });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`${subjects}.>`] });
    const hub = await startHub();
    const config = (deliver: 'new' | 'all') => ({
      bridges: [
        {
          type: 'nats',
          name: 'js',
          url: 'nats://127.0.0.1:4222',
          stream,
          deliver,
          routes: [{ subject: `${subjects}.sensors.*`, channel: 'sensors:{1}', event: 'reading' }],
        },
      ],
    });
    let integrations = await startIntegrations(hub.server, config('new'));
    const js = nc.jetstream();
    try {
      await js.publish(`${subjects}.sensors.s1`, JSON.stringify({ seq: 1 }));
      const h = headers();
      h.set('Nats-Msg-Id', `m-${RUN}-2`);
      await js.publish(`${subjects}.sensors.s1`, JSON.stringify({ seq: 2 }), { headers: h });
      await js.publish(`${subjects}.sensors.s1`, 'plain text');
      await eventually(async () => (await history(hub, 'sensors:s1')).length === 3, 'three publications');
      const first = await history(hub, 'sensors:s1');
      assert.deepEqual(
        first.map((p) => p.data),
        [{ seq: 1 }, { seq: 2 }, 'plain text'],
      );
      assert.equal(first[0].event, 'reading');
      // Lose the consumers' positions (as if every ack was lost) and replay the stream from the start.
      await integrations.close();
      const bridge = integrations.bridges[0] as unknown as { durableName(s: string): string };
      await jsm.consumers.delete(stream, bridge.durableName(`${subjects}.sensors.*`));
      integrations = await startIntegrations(hub.server, config('all'));
      await eventually(async () => (await bridgeCount(hub, 'duplicate')) >= 3, 'the replay');
      await sleep(200);
      assert.equal((await history(hub, 'sensors:s1')).length, 3, 'the replay published nothing new');
      assert.equal(await bridgeCount(hub, 'published'), 3, 'the replay counts as duplicates, not publications');
    } finally {
      await integrations.close();
      await hub.close();
      await nc.close();
    }
  });

  it('core NATS: maps subjects (at most once)', async (t) => {
    if (!(await requireService(t, 'nats'))) return;
    const hub = await startHub();
    const integrations = await startIntegrations(hub.server, {
      bridges: [
        {
          type: 'nats',
          name: 'core',
          url: 'nats://127.0.0.1:4222',
          routes: [{ subject: `hc.${RUN}.>`, channel: 'events:{1}', decode: 'text' }],
        },
      ],
    });
    const nc = await connect({ servers: '127.0.0.1:4222' });
    try {
      await nc.flush();
      nc.publish(`hc.${RUN}.door.1`, 'open');
      await eventually(async () => (await history(hub, 'events:door.1')).length === 1, 'the event');
      assert.equal((await history(hub, 'events:door.1'))[0].data, 'open');
    } finally {
      await nc.close();
      await integrations.close();
      await hub.close();
    }
  });
});

describe('Redis Streams bridge', () => {
  const key = `herald-test:${RUN}:orders`;
  after(async () => {
    const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
    await redis.connect().catch(() => undefined);
    await redis.del(key).catch(() => undefined);
    redis.disconnect();
  });

  it('maps entries through a consumer group; a re-read after lost acks is not published twice', async (t) => {
    if (!(await requireService(t, 'redis'))) return;
    const redis = new Redis('redis://127.0.0.1:6379');
    const hub = await startHub();
    const config = {
      bridges: [
        {
          type: 'redis-stream',
          name: 'orders',
          url: 'redis://127.0.0.1:6379',
          consumer: 'test-consumer',
          block: 0.2,
          routes: [{ stream: key, channel: 'orders:{field.orderId}', event: '{field.type}' }],
        },
      ],
    };
    let integrations = await startIntegrations(hub.server, config);
    try {
      await redis.xadd(key, '*', 'orderId', '42', 'type', 'status', 'data', '{"status":"paid"}');
      await redis.xadd(key, '*', 'orderId', '42', 'type', 'status', 'data', '{"status":"shipped"}');
      await redis.xadd(key, '*', 'orderId', '43', 'note', 'no data field');
      await eventually(async () => (await history(hub, 'orders:42')).length === 2, 'order 42');
      await eventually(async () => (await history(hub, 'orders:43')).length === 1, 'order 43');
      const order42 = await history(hub, 'orders:42');
      assert.deepEqual(
        order42.map((p) => [p.event, p.data]),
        [
          ['status', { status: 'paid' }],
          ['status', { status: 'shipped' }],
        ],
      );
      assert.deepEqual((await history(hub, 'orders:43'))[0].data, { orderId: '43', note: 'no data field' });
      const pending = (await redis.xpending(key, 'herald-orders')) as [number, ...unknown[]];
      assert.equal(pending[0], 0, 'everything acked');
      // Rewind the group, as if the acks had been lost before a crash: the restarted bridge reads all again.
      await integrations.close();
      await redis.xgroup('SETID', key, 'herald-orders', '0');
      integrations = await startIntegrations(hub.server, config);
      await eventually(async () => (await bridgeCount(hub, 'duplicate')) >= 3, 'the re-read');
      assert.equal((await history(hub, 'orders:42')).length, 2, 'no duplicate');
      assert.equal((await history(hub, 'orders:43')).length, 1, 'no duplicate');
      assert.equal(await bridgeCount(hub, 'published'), 3, 'the re-read counts as duplicates');
    } finally {
      await integrations.close();
      await hub.close();
      await redis.quit();
    }
  });
});
