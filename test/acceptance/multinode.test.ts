/**
 * PROTOCOL.md sections 7 and 8 across nodes: two `herald serve` processes on one broker (Redis,
 * then NATS, each under a prefix of this run). A poll cursor, an SSE cursor and a WebSocket
 * position taken on one node resume on the other (no sticky sessions), an acknowledged
 * publication is in history on every node at once, and an idempotency key holds across nodes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { deleteNatsNamespace } from '../support/nats.ts';
import { deleteRedisPrefix } from '../support/redis.ts';
import { REQUIRE_SERVICES, portOpen } from '../support/services.ts';
import {
  Herald,
  Sse,
  Ws,
  api,
  killAll,
  mint,
  offsets,
  poll,
  publish,
  query,
  range,
  sleep,
  uniqueChannel,
} from './support.ts';

const BROKERS = [
  {
    name: 'Redis',
    port: 6379,
    url: (prefix: string) => `redis://127.0.0.1:6379?prefix=${prefix}`,
    clean: (prefix: string) => deleteRedisPrefix('redis://127.0.0.1:6379', prefix),
  },
  {
    name: 'NATS',
    port: 4222,
    url: (prefix: string) => `nats://127.0.0.1:4222?prefix=${prefix}`,
    clean: (prefix: string) => deleteNatsNamespace('nats://127.0.0.1:4222', prefix),
  },
];

after(killAll);

for (const broker of BROKERS) {
  const prefix = `acc_${randomBytes(5).toString('hex')}`;
  let a: Herald;
  let b: Herald;
  let token: string;
  let available = false;

  describe(`sections 7 and 8: two nodes on one ${broker.name} broker`, () => {
    before(async () => {
      available = await portOpen(broker.port);
      if (!available) {
        if (REQUIRE_SERVICES)
          throw new Error(`needs ${broker.name} on 127.0.0.1:${broker.port} (HERALD_REQUIRE_SERVICES=1)`);
        return;
      }
      const env = { HERALD_BROKER: broker.url(prefix) };
      [a, b] = await Promise.all([Herald.start(env), Herald.start(env)]);
      token = await mint({ channels: ['*'], publish: ['*'] });
    });

    after(async () => {
      if (!available) return;
      await Promise.all([a?.kill(), b?.kill()]);
      await broker.clean(prefix);
    });

    it('a poll cursor from node A works on node B and back', async (t) => {
      if (!available) return t.skip(`needs ${broker.name}`);
      const channel = uniqueChannel('nodes');
      const first = await poll(a, [channel], { token, timeout: '1' });
      for (let i = 1; i <= 3; i++) await publish(a, channel, i);
      const onB = await poll(b, [channel], { token, cursor: first.json.cursor, timeout: '5' });
      assert.equal(onB.status, 200, onB.text);
      assert.deepEqual(offsets(onB.json.publications), [1, 2, 3]);
      await publish(b, channel, 4);
      const onA = await poll(a, [channel], { token, cursor: onB.json.cursor, timeout: '5' });
      assert.deepEqual(offsets(onA.json.publications), [4]);
      // A poll waiting on B is answered by a publication made on A.
      const waiting = poll(b, [channel], { token, cursor: onA.json.cursor, timeout: '20' });
      await sleep(200);
      await publish(a, channel, 5);
      assert.deepEqual(offsets((await waiting).json.publications), [5]);
    });

    it('an SSE cursor from node A resumes gaplessly on node B', async (t) => {
      if (!available) return t.skip(`needs ${broker.name}`);
      const channel = uniqueChannel('sse-nodes');
      const onA = await Sse.open(`${a.url}/sse?${query([channel], { token })}`);
      await onA.waitFor(() => onA.named('herald.connected').length === 1, 'herald.connected on A');
      await publish(a, channel, 1);
      await onA.waitFor(() => onA.pubEvents().length === 1, 'the first publication');
      const cursor = onA.pubEvents()[0]?.id as string;
      onA.close();
      await publish(a, channel, 2);
      await publish(b, channel, 3);
      const onB = await Sse.open(`${b.url}/sse?${query([channel], { token })}`, { 'last-event-id': cursor });
      await onB.waitFor(() => onB.named('herald.connected').length === 1, 'herald.connected on B');
      assert.equal(onB.named('herald.connected')[0].channels[channel].recovered, true);
      await publish(a, channel, 4);
      await onB.waitFor(() => onB.pubs().length >= 3, 'the replay and the live one');
      await sleep(100);
      assert.deepEqual(offsets(onB.pubs()), [2, 3, 4]);
      onB.close();
    });

    it('a WebSocket position from node A resumes on node B', async (t) => {
      if (!available) return t.skip(`needs ${broker.name}`);
      const channel = uniqueChannel('ws-nodes');
      const onA = await Ws.connect(a.wsUrl, token);
      const start = await onA.ok('subscribe', { channel });
      await onA.ok('publish', { channel, data: 1 });
      await onA.waitFor(() => onA.pubs(channel).length === 1, 'the first publication');
      onA.end();
      await publish(a, channel, 2);
      await publish(b, channel, 3);
      const onB = await Ws.connect(b.wsUrl, token);
      const answer = await onB.ok('subscribe', { channel, since: { offset: 1, epoch: start.epoch } });
      assert.equal(answer.recovered, true);
      assert.deepEqual(offsets(answer.publications), [2, 3]);
      await publish(a, channel, 4);
      await onB.waitFor(() => onB.pubs(channel).length === 1, 'the live one from A');
      assert.deepEqual(offsets(onB.pubs(channel)), [4]);
      onB.end();
    });

    it('an acknowledged publication is in history on every node at once, offsets shared by both', async (t) => {
      if (!available) return t.skip(`needs ${broker.name}`);
      const channel = uniqueChannel('acked');
      const acks = [];
      for (let i = 1; i <= 20; i++) {
        const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
        const ack = await publish(from, channel, i);
        acks.push(ack);
        const history = await api(to, 'GET', `/api/channels/${encodeURIComponent(channel)}/history?limit=1`);
        assert.equal(history.json.offset, ack.offset, `publication ${i} acked on one node is in history on the other`);
      }
      assert.deepEqual(offsets(acks), range(1, 20));
      assert.equal(new Set(acks.map((x) => x.epoch)).size, 1);
    });

    it('an idempotencyKey repeated on the other node is applied once', async (t) => {
      if (!available) return t.skip(`needs ${broker.name}`);
      const channel = uniqueChannel('idem-nodes');
      const first = await publish(a, channel, 'x', { idempotencyKey: 'same' });
      const repeat = await publish(b, channel, 'x', { idempotencyKey: 'same' });
      assert.deepEqual(repeat, first);
      const history = await api(b, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
      assert.equal(history.json.publications.length, 1);
    });
  });
}
