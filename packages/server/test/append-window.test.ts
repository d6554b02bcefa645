/**
 * The roll-up window in the core, driven without a clock (docs/streams.md): appends wait in the
 * subscriber's window; any other publication flushes it first, merged, and is never delayed; a
 * window past the queue bound flushes at once; a subscriber that stopped reading is ended with
 * 4004 when its window flushes, as for any write. The window's timer is set far out so that
 * nothing here depends on it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePatterns } from '@herald/protocol';
import { Hub, MemoryBroker, MemoryPresence, type Credentials } from '@herald/server';
import { pino } from 'pino';
import { FakePeer } from './support/fake-peer.ts';

const CHANNEL = 'answer:1';
const credentials: Credentials = {
  userId: 'u',
  canSubscribe: compilePatterns(['*']),
  canPublish: compilePatterns(['*']),
};

async function setup(maxQueueBytes = 1_048_576) {
  const hub = new Hub({
    broker: new MemoryBroker({ size: 1000, ttlSeconds: 600 }),
    presence: new MemoryPresence(),
    logger: pino({ level: 'silent' }),
    streamWindowMs: 600_000,
    limits: {
      maxMessageBytes: 65_536,
      historySize: 1000,
      maxQueueBytes,
      ephemeralDropBytes: Math.floor(maxQueueBytes / 2),
      maxSubscriptionsPerSession: 128,
    },
  });
  await hub.start();
  const peer = new FakePeer();
  const session = hub.openSession(peer, credentials);
  await hub.activate(await hub.subscribe(session, CHANNEL), peer);
  const { offset: id } = (await hub.publish({ channel: CHANNEL, data: '', stream: { status: 'open' } })) as {
    offset: number;
  };
  return { hub, peer, id };
}

describe('the roll-up window', () => {
  it('holds appends until another publication, which flushes them merged first and is not delayed', async () => {
    const { hub, peer, id } = await setup();
    for (let i = 0; i < 10; i++) await hub.publish({ channel: CHANNEL, data: `t${i}`, append: { to: id } });
    assert.equal(peer.written.length, 0, 'the open and the appends wait in the window');
    await hub.publish({ channel: CHANNEL, data: { plain: true } });
    // One publication covering the open and ten appends (offsets 1..11), then the plain one at 12.
    assert.deepEqual(
      peer.written.map((w) => w.offset),
      [11, 12],
    );
    await hub.close();
  });

  it('flushes a window at once when it passes the queue bound', async () => {
    const { hub, peer, id } = await setup(2048);
    const piece = 'x'.repeat(300);
    for (let i = 0; i < 10; i++) await hub.publish({ channel: CHANNEL, data: piece, append: { to: id } });
    assert.ok(peer.written.length > 0, 'flushed without a tick');
    assert.ok(peer.written.length < 10, `merged: ${peer.written.length} writes`);
    await hub.close();
  });

  it('ends a subscriber that stopped reading (4004) when its window flushes', async () => {
    const { hub, peer, id } = await setup(4096);
    for (let i = 0; i < 5; i++) await hub.publish({ channel: CHANNEL, data: 'tok', append: { to: id } });
    peer.buffered = 10_000;
    await hub.publish({ channel: CHANNEL, data: 'plain' });
    assert.equal(peer.endedCode(), 4004);
    assert.equal(hub.stats.slowConsumerDisconnects, 1);
    await hub.close();
  });
});
