/**
 * The store's recovery paths, driven directly on a real hub (memory broker) with a clock of our
 * own: a writer that died between publishing and saving, a creation never recorded, expiry, and
 * a deleted stream's late writer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createStream } from '../src/create.ts';
import { ForkRegistry } from '../src/forks.ts';
import { readStream } from '../src/reader.ts';
import { StreamStore } from '../src/store.ts';
import { startHub, type TestHub } from '../../../test/support/hub.ts';

let hub: TestHub;
let clock = 1_000_000;
let store: StreamStore;
let forks: ForkRegistry;
let n = 0;
const channel = (name: string): string => `ds:store/${name}-${++n}`;
const text = (s: string) => ({ mode: 'bytes' as const, bytes: Buffer.from(s) });
const LIMITS = { maxBytes: 1 << 20, page: 100 };

before(async () => {
  hub = await startHub();
  store = new StreamStore(hub.server.hub, pino({ level: 'silent' }), () => clock);
  forks = new ForkRegistry(store);
});
after(() => hub.close());

async function content(ch: string): Promise<string> {
  const loaded = await store.existing(ch);
  const read = await readStream(store.broker, ch, loaded.record, 0, LIMITS);
  return read.chunks.map((c) => (c.payload.mode === 'bytes' ? c.payload.bytes.toString() : '')).join('');
}

describe('the log is the truth, the record its summary', () => {
  it('a write published but never saved is folded in by the next request, on any node', async () => {
    const ch = channel('crash');
    await createStream(store, forks, ch, { contentType: 'text/plain', closed: false }, Buffer.from('a'), undefined);
    const before = (await store.existing(ch)).record;
    const producer = { id: 'p', epoch: 0, seq: 0 };
    // The writer dies here: its append is in the log, its record never saved.
    assert.ok(await store.publish(ch, before, 'append', text('b'), { producer }));
    const retry = await store.append(ch, { contentType: 'text/plain', closed: false, producer }, Buffer.from('b'));
    assert.equal(retry.status, 204, 'the retry is a duplicate, not a second append');
    assert.equal(await content(ch), 'ab');
    assert.equal((await store.existing(ch)).record.tail, before.tail + 1);
  });

  it('a creation published but never recorded is adopted, not made twice', async () => {
    const ch = channel('adopt');
    const top = (await store.broker.history(ch, { limit: 0 })).top;
    const config = { contentType: 'text/plain', start: 0, inherited: [] };
    assert.ok(await store.publish(ch, { top: top.offset, epoch: top.epoch }, 'create', text('x'), { config }));
    const again = await createStream(
      store,
      forks,
      ch,
      { contentType: 'text/plain', closed: false },
      Buffer.alloc(0),
      undefined,
    );
    assert.equal(again.created, false);
    assert.equal(await content(ch), 'x');
    assert.equal((await store.broker.history(ch, { limit: 0 })).top.offset, top.offset + 1, 'one create only');
  });

  it("a deleted stream's late writer lands nowhere", async () => {
    const ch = channel('late');
    await createStream(store, forks, ch, { contentType: 'text/plain', closed: false }, Buffer.alloc(0), undefined);
    const seen = (await store.existing(ch)).record;
    await store.delete(ch);
    assert.equal(await store.publish(ch, seen, 'append', text('zombie'), {}), undefined);
    await assert.rejects(store.existing(ch), { status: 404 });
  });
});

describe('expiry (lazy: a request finds it)', () => {
  it('a TTL counts from the last read or write; HEAD-like loads do not extend it', async () => {
    const ch = channel('ttl');
    await createStream(
      store,
      forks,
      ch,
      { contentType: 'text/plain', ttl: 10, closed: false },
      Buffer.alloc(0),
      undefined,
    );
    clock += 8_000;
    await store.append(ch, { contentType: 'text/plain', closed: false }, Buffer.from('keep'));
    clock += 8_000;
    assert.equal((await store.existing(ch)).record.tail, 1, 'alive: 8 s since the write');
    clock += 2_500;
    await assert.rejects(store.existing(ch), { status: 404 }, 'expired: 10.5 s since the write');
  });

  it('an absolute expiry time is not moved by reads or writes', async () => {
    const ch = channel('expires');
    await createStream(
      store,
      forks,
      ch,
      { contentType: 'text/plain', expiresAt: clock + 5_000, closed: false },
      Buffer.alloc(0),
      undefined,
    );
    clock += 4_000;
    await store.append(ch, { contentType: 'text/plain', closed: false }, Buffer.from('x'));
    clock += 1_000;
    await assert.rejects(store.existing(ch), { status: 404 });
  });

  it('a source with a live fork expires to 410, and goes for good when the fork does', async () => {
    const source = channel('src');
    const fork = channel('fork');
    await createStream(
      store,
      forks,
      source,
      { contentType: 'text/plain', ttl: 5, closed: false },
      Buffer.from('s'),
      undefined,
    );
    await createStream(
      store,
      forks,
      fork,
      { closed: false, ttl: 60, fork: { from: source, subOffset: 0 } },
      Buffer.alloc(0),
      source,
    );
    clock += 6_000;
    await assert.rejects(store.existing(source), { status: 410 });
    assert.equal(await content(fork), 's', 'the fork still reads the inherited data');
    await store.delete(fork);
    assert.equal(await store.load(source), undefined, 'released by its last fork, the source is gone');
  });
});
