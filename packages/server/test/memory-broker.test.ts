import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IDEMPOTENCY_WINDOW_MS,
  MemoryBroker,
  type BrokerEvents,
  type ControlMessage,
  type PublicationRecord,
  type PublishDraft,
} from '@herald/server';

function setup(options: { size?: number; ttlSeconds?: number } = {}) {
  let now = 1_000_000;
  const broker = new MemoryBroker({ size: options.size ?? 100, ttlSeconds: options.ttlSeconds ?? 60, now: () => now });
  const received: PublicationRecord[] = [];
  const control: ControlMessage[] = [];
  const events: BrokerEvents = {
    publication: (r) => received.push(r),
    control: (m) => control.push(m),
    readiness: () => undefined,
  };
  return {
    broker,
    received,
    control,
    start: () => broker.start(events),
    advance: (ms: number) => (now += ms),
  };
}

const draft = (channel: string, data: unknown, extra: Partial<PublishDraft> = {}): PublishDraft => ({
  channel,
  dataJson: JSON.stringify(data),
  ts: 1,
  ephemeral: false,
  ...extra,
});

describe('MemoryBroker', () => {
  it('numbers publications 1, 2, 3 per channel under one epoch, and an empty stream is at 0', async () => {
    const { broker, start } = setup();
    await start();
    const empty = await broker.history('a', { limit: 0 });
    assert.equal(empty.top.offset, 0);
    const r1 = await broker.publish(draft('a', 1));
    const r2 = await broker.publish(draft('a', 2));
    const other = await broker.publish(draft('b', 1));
    assert.deepEqual([r1.record.offset, r2.record.offset, other.record.offset], [1, 2, 1]);
    assert.equal(r1.record.epoch, empty.top.epoch);
    assert.equal(r1.record.epoch, r2.record.epoch);
    assert.notEqual(other.record.epoch, r1.record.epoch);
    assert.deepEqual(JSON.parse(r2.record.json), { channel: 'a', offset: 2, epoch: r2.record.epoch, data: 2, ts: 1 });
  });

  it('stores before it answers: the answered publication is in history', async () => {
    const { broker, start } = setup();
    await start();
    for (let i = 1; i <= 20; i++) {
      const { record } = await broker.publish(draft('a', i));
      const h = await broker.history('a', { since: { offset: record.offset - 1, epoch: record.epoch } });
      assert.equal(h.recovered, true);
      assert.equal(h.publications[0]?.offset, record.offset);
    }
  });

  it('fans out only channels this node subscribed to, in order', async () => {
    const { broker, start, received } = setup();
    await start();
    await broker.publish(draft('a', 0));
    await broker.subscribe('a');
    for (let i = 1; i <= 3; i++) await broker.publish(draft('a', i));
    await broker.publish(draft('b', 9));
    await broker.unsubscribe('a');
    await broker.publish(draft('a', 4));
    assert.deepEqual(
      received.map((r) => [r.channel, r.offset]),
      [
        ['a', 2],
        ['a', 3],
        ['a', 4],
      ],
    );
  });

  it('answers history by limit (latest N, oldest first) and since (recovered)', async () => {
    const { broker, start } = setup();
    await start();
    for (let i = 1; i <= 10; i++) await broker.publish(draft('a', i));
    const latest = await broker.history('a', { limit: 3 });
    assert.deepEqual(
      latest.publications.map((p) => p.offset),
      [8, 9, 10],
    );
    assert.equal(latest.recovered, undefined);
    const epoch = latest.top.epoch;
    const since = await broker.history('a', { since: { offset: 6, epoch } });
    assert.deepEqual(
      since.publications.map((p) => p.offset),
      [7, 8, 9, 10],
    );
    assert.equal(since.recovered, true);
    const limited = await broker.history('a', { since: { offset: 6, epoch }, limit: 2 });
    assert.deepEqual(
      limited.publications.map((p) => p.offset),
      [7, 8],
    );
    const wrongEpoch = await broker.history('a', { since: { offset: 6, epoch: 'other' } });
    assert.deepEqual(wrongEpoch, { publications: [], top: { offset: 10, epoch }, recovered: false });
    const ahead = await broker.history('a', { since: { offset: 11, epoch } });
    assert.equal(ahead.recovered, false);
    const unknown = await broker.history('never', { since: { offset: 0, epoch: 'x' } });
    assert.equal(unknown.recovered, false);
  });

  it('trims by size: positions before the retained window are recovered: false', async () => {
    const { broker, start } = setup({ size: 5 });
    await start();
    for (let i = 1; i <= 12; i++) await broker.publish(draft('a', i));
    const all = await broker.history('a', {});
    assert.deepEqual(
      all.publications.map((p) => p.offset),
      [8, 9, 10, 11, 12],
    );
    const epoch = all.top.epoch;
    assert.equal((await broker.history('a', { since: { offset: 7, epoch } })).recovered, true);
    assert.equal((await broker.history('a', { since: { offset: 6, epoch } })).recovered, false);
  });

  it('keeps exactly the newest `size` across many trims and compactions, with every window readable', async () => {
    const size = 700;
    const { broker, start, advance } = setup({ size, ttlSeconds: 60 });
    await start();
    let epoch = '';
    for (let i = 1; i <= 5_000; i++) {
      const { record } = await broker.publish(draft('a', i));
      epoch = record.epoch;
      // Check around the moments the retained window is compacted (every 1024 dropped or more).
      if (i % 997 === 0 || i === 1_024 + size || i === 2_048 + size + 1) {
        const all = await broker.history('a', {});
        const kept = Math.min(i, size);
        assert.equal(all.publications.length, kept, `retained after ${i}`);
        assert.equal(all.publications[0]?.offset, i - kept + 1);
        assert.equal(all.publications.at(-1)?.offset, i);
        const since = await broker.history('a', { since: { offset: i - 10, epoch }, limit: 3 });
        assert.deepEqual(
          since.publications.map((p) => JSON.parse(p.json).data),
          [i - 9, i - 8, i - 7],
        );
        const oldest = i - kept;
        assert.equal((await broker.history('a', { since: { offset: oldest, epoch } })).recovered, true);
        if (oldest > 0)
          assert.equal((await broker.history('a', { since: { offset: oldest - 1, epoch } })).recovered, false);
      }
    }
    // Age drops the rest; the position stays and the next publication continues it.
    advance(61_000);
    assert.deepEqual(await broker.history('a', {}), { publications: [], top: { offset: 5_000, epoch } });
    const next = await broker.publish(draft('a', 'next'));
    assert.equal(next.record.offset, 5_001);
    assert.deepEqual(
      (await broker.history('a', { since: { offset: 5_000, epoch } })).publications.map((p) => p.offset),
      [5_001],
    );
  });

  it('trims by age (TTL) but keeps the stream position', async () => {
    const { broker, start, advance } = setup({ ttlSeconds: 10 });
    await start();
    await broker.publish(draft('a', 1));
    advance(6_000);
    await broker.publish(draft('a', 2));
    advance(5_000);
    const h = await broker.history('a', {});
    assert.deepEqual(
      h.publications.map((p) => p.offset),
      [2],
    );
    assert.equal(h.top.offset, 2);
    assert.equal((await broker.history('a', { since: { offset: 0, epoch: h.top.epoch } })).recovered, false);
    assert.equal((await broker.history('a', { since: { offset: 1, epoch: h.top.epoch } })).recovered, true);
    advance(6_000);
    const empty = await broker.history('a', { since: { offset: 2, epoch: h.top.epoch } });
    assert.deepEqual(empty, { publications: [], top: h.top, recovered: true });
  });

  it('applies an idempotency key once per channel within the window', async () => {
    const { broker, start, advance, received } = setup();
    await start();
    await broker.subscribe('a');
    const first = await broker.publish(draft('a', 1, { idempotencyKey: 'k' }));
    const again = await broker.publish(draft('a', 2, { idempotencyKey: 'k' }));
    assert.equal(first.duplicate, false);
    assert.equal(again.duplicate, true);
    assert.equal(again.record, first.record);
    assert.equal(received.length, 1);
    const elsewhere = await broker.publish(draft('b', 1, { idempotencyKey: 'k' }));
    assert.equal(elsewhere.duplicate, false);
    advance(IDEMPOTENCY_WINDOW_MS + 1);
    const later = await broker.publish(draft('a', 3, { idempotencyKey: 'k' }));
    assert.equal(later.duplicate, false);
    assert.equal(later.record.offset, 2);
  });

  it('never stores ephemeral publications, but delivers them live', async () => {
    const { broker, start, received } = setup();
    await start();
    await broker.subscribe('a');
    const { record } = await broker.publish(draft('a', 'typing', { ephemeral: true }));
    assert.equal(record.offset, 0);
    assert.equal(record.epoch, '');
    assert.deepEqual(JSON.parse(record.json), { channel: 'a', data: 'typing', ts: 1 });
    assert.equal(received.length, 1);
    const h = await broker.history('a', {});
    assert.equal(h.publications.length, 0);
    assert.equal(h.top.offset, 0);
  });

  it('routes channel control messages to subscribed nodes and user disconnects everywhere', async () => {
    const { broker, start, control } = setup();
    await start();
    const client = { clientId: 'c1', userId: 'u' };
    await broker.broadcast({ kind: 'join', channel: 'a', client });
    await broker.subscribe('a');
    await broker.broadcast({ kind: 'join', channel: 'a', client });
    await broker.broadcast({ kind: 'disconnect_user', userId: 'u', code: 1000, reason: 'bye' });
    assert.deepEqual(
      control.map((m) => m.kind),
      ['join', 'disconnect_user'],
    );
  });

  it('refuses to publish before start and after close', async () => {
    const { broker, start } = setup();
    await assert.rejects(broker.publish(draft('a', 1)));
    await start();
    assert.equal(broker.ready, true);
    await broker.close();
    assert.equal(broker.ready, false);
    await assert.rejects(broker.publish(draft('a', 1)));
  });
});
