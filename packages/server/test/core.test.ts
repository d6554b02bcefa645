/**
 * The core's unit tier: Hub, Session, ChannelState, the replay and the command session driven by
 * a scripted broker (holes, duplicates, epoch changes, slow or failing history) and a fake
 * transport, on an injected clock. No sockets: every interleaving here is chosen by the test.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { compilePatterns, type Position } from '@herald/protocol';
import {
  CommandSession,
  Hub,
  MemoryPresence,
  type Credentials,
  type Session,
  type SubscribeOutcome,
} from '@herald/server';
import { pino } from 'pino';
import { FakePeer } from './support/fake-peer.ts';
import { ScriptedBroker, gate } from './support/scripted-broker.ts';

const CHANNEL = 'c:1';

function credentials(userId: string, channels = ['*']): Credentials {
  return { userId, canSubscribe: compilePatterns(channels), canPublish: compilePatterns(['*']) };
}

let clock = 1_000_000;
const now = (): number => clock;

interface Setup {
  readonly hub: Hub;
  readonly broker: ScriptedBroker;
}

async function setup(options: { maxQueueBytes?: number; historySize?: number } = {}): Promise<Setup> {
  const maxQueueBytes = options.maxQueueBytes ?? 1_048_576;
  const broker = new ScriptedBroker(options.historySize ?? 1000, 600, now);
  const hub = new Hub({
    broker,
    presence: new MemoryPresence(),
    logger: pino({ level: 'silent' }),
    now,
    limits: {
      maxMessageBytes: 65_536,
      historySize: options.historySize ?? 1000,
      maxQueueBytes,
      ephemeralDropBytes: Math.floor(maxQueueBytes / 2),
      maxSubscriptionsPerSession: 128,
    },
  });
  await hub.start();
  return { hub, broker };
}

async function publishMany(hub: Hub, count: number, data: unknown = 'x'): Promise<Position[]> {
  const positions: Position[] = [];
  for (let i = 0; i < count; i++) positions.push((await hub.publish({ channel: CHANNEL, data })) as Position);
  return positions;
}

/** Subscribes and goes live at once (the answer is the test's concern elsewhere). */
async function subscribed(
  hub: Hub,
  peer: FakePeer,
  since?: Position,
): Promise<{ session: Session; outcome: SubscribeOutcome }> {
  const session = hub.openSession(peer, credentials('u'));
  const outcome = await hub.subscribe(session, CHANNEL, since === undefined ? {} : { since });
  await hub.activate(outcome, peer);
  return { session, outcome };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function settle(until: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !until(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(until(), `timed out waiting for ${what}`);
}

beforeEach(() => {
  clock = 1_000_000;
});

describe('ChannelState: a broker that drops, repeats and resets', () => {
  it('fills a hole from history before anything after it is delivered', async () => {
    const { hub, broker } = await setup();
    const peer = new FakePeer();
    await subscribed(hub, peer);
    broker.autoDeliver = false;
    await publishMany(hub, 5);
    broker.release((r) => r.offset === 3);
    await settle(() => peer.written.length === 5, 'the hole to be filled');
    assert.deepEqual(peer.offsets(CHANNEL), [1, 2, 3, 4, 5]);
    assert.deepEqual(broker.historyQueries.at(-1)?.since?.offset, 2, 'filled from the last delivered');
  });

  it('delivers a publication the broker repeats once', async () => {
    const { hub, broker } = await setup();
    const peer = new FakePeer();
    await subscribed(hub, peer);
    broker.autoDeliver = false;
    await publishMany(hub, 3);
    const [first, second, third] = broker.pending.splice(0);
    for (const record of [first, second, first, second, third, third]) broker.deliver(record!);
    assert.deepEqual(peer.offsets(CHANNEL), [1, 2, 3]);
  });

  it('tells every subscriber when history cannot fill a hole: unsub 2500, never a silent gap', async () => {
    const { hub, broker } = await setup();
    const a = new FakePeer();
    const b = new FakePeer();
    await subscribed(hub, a);
    await subscribed(hub, b);
    broker.autoDeliver = false;
    await publishMany(hub, 4);
    broker.failHistory = true;
    broker.release((r) => r.offset === 2);
    await settle(() => a.unsubs.length === 1 && b.unsubs.length === 1, 'both to lose the channel');
    for (const peer of [a, b]) {
      assert.deepEqual(peer.offsets(CHANNEL), [1], 'nothing after the hole');
      assert.equal(peer.unsubs[0]?.code, 2500);
    }
  });

  it('ends a subscription loudly when the stream changes epoch', async () => {
    const { hub, broker } = await setup();
    const peer = new FakePeer();
    const { session } = await subscribed(hub, peer);
    await publishMany(hub, 2);
    broker.deliver({ channel: CHANNEL, offset: 3, epoch: 'another', json: '{}' });
    assert.deepEqual(peer.offsets(CHANNEL), [1, 2]);
    assert.equal(peer.unsubs[0]?.code, 2500);
    assert.equal(session.subscriptions.has(CHANNEL), false);
  });

  it('holds what arrives during a fill within the bound, and reads what it dropped from history', async () => {
    const maxQueueBytes = 2048;
    const { hub, broker } = await setup({ maxQueueBytes });
    const peer = new FakePeer();
    await subscribed(hub, peer);
    broker.autoDeliver = false;
    const slow = gate();
    broker.historyGate = slow.promise;
    await publishMany(hub, 3, 'y'.repeat(100));
    broker.release((r) => r.offset === 2); // a hole: the fill starts and waits at the gate
    await publishMany(hub, 60, 'y'.repeat(100)); // ~9 KiB arrives during the fill: past the bound
    broker.release();
    assert.deepEqual(peer.offsets(CHANNEL), [1], 'held, not delivered, during the fill');
    broker.historyGate = undefined;
    slow.open();
    await settle(() => peer.written.length === 63, 'every publication');
    assert.deepEqual(peer.offsets(CHANNEL), range(1, 63));
    for (const query of broker.historyQueries.filter((q) => q.since !== undefined)) {
      assert.equal(query.maxBytes, maxQueueBytes, 'fills read in pages within the bound');
    }
  });

  it('after a broker reconnect, reads what pub/sub dropped meanwhile', async () => {
    const { hub, broker } = await setup();
    const peer = new FakePeer();
    await subscribed(hub, peer);
    await publishMany(hub, 2);
    broker.autoDeliver = false;
    await publishMany(hub, 3);
    broker.pending.length = 0; // lost while "disconnected"
    broker.readiness(true);
    await settle(() => peer.written.length === 5, 'the resync');
    assert.deepEqual(peer.offsets(CHANNEL), range(1, 5));
  });
});

describe('subscribe with recovery: pages within the bound', () => {
  it('serves a recovery larger than the bound in pages the client paces, exactly once, then live', async () => {
    const maxQueueBytes = 4096;
    const { hub, broker } = await setup({ maxQueueBytes });
    await publishMany(hub, 100, 'z'.repeat(200)); // ~26 KiB of JSON: several pages
    const peer = new FakePeer('sse', false);
    peer.accumulate = true;
    const session = hub.openSession(peer, credentials('u'));
    const outcome = await hub.subscribe(session, CHANNEL, {
      since: { offset: 0, epoch: (await broker.history(CHANNEL, { limit: 0 })).top.epoch },
    });
    assert.equal(outcome.recovered, true);
    assert.equal(outcome.more, true, 'more than one page');
    const firstPageBytes = outcome.publications.reduce((n, r) => n + r.json.length, 0);
    assert.ok(firstPageBytes <= maxQueueBytes, `first page ${firstPageBytes} bytes`);
    const live = hub.activate(outcome, peer);
    let pages = 1;
    while (peer.written.length < 100) {
      await settle(() => peer.waiting || peer.written.length >= 100, 'the next page or the end');
      if (!peer.waiting) break;
      assert.ok(peer.buffered <= 2 * maxQueueBytes, `never more than a page past the bound: ${peer.buffered}`);
      if (pages === 2) await publishMany(hub, 5, 'live'); // live ones arrive mid-replay: held
      peer.drain();
      pages++;
    }
    await live;
    assert.ok(pages >= 5, `${pages} pages`);
    await settle(() => peer.written.length === 105, 'the live ones');
    assert.deepEqual(peer.offsets(CHANNEL), range(1, 105));
    assert.equal(peer.ended, undefined);
  });

  it('ends a client that takes nothing as a slow consumer (4004), and reads no further', async () => {
    const { hub } = await setup({ maxQueueBytes: 2048 });
    const [first] = await publishMany(hub, 50, 'z'.repeat(200));
    const peer = new FakePeer('sse', false);
    peer.accumulate = true;
    const session = hub.openSession(peer, credentials('u'));
    const outcome = await hub.subscribe(session, CHANNEL, { since: { offset: 0, epoch: first!.epoch } });
    const live = hub.activate(outcome, peer);
    await settle(() => peer.waiting, 'the replay to wait');
    const written = peer.written.length;
    peer.drain(false);
    await live;
    assert.equal(peer.ended?.code, 4004);
    assert.equal(session.closed, true);
    assert.equal(peer.written.length, written);
    assert.equal(hub.stats.slowConsumerDisconnects, 1);
  });

  it('ends the subscription loudly when history is trimmed between pages (unsub 2500)', async () => {
    const { hub } = await setup({ maxQueueBytes: 2048, historySize: 40 });
    const [first] = await publishMany(hub, 40, 'z'.repeat(200));
    const peer = new FakePeer('sse', false);
    peer.accumulate = true;
    const session = hub.openSession(peer, credentials('u'));
    const outcome = await hub.subscribe(session, CHANNEL, { since: { offset: 0, epoch: first!.epoch } });
    assert.equal(outcome.recovered, true);
    const live = hub.activate(outcome, peer);
    await settle(() => peer.waiting, 'the replay to wait');
    await publishMany(hub, 60, 'late'); // trims what the next page needs
    peer.drain();
    await live;
    assert.equal(peer.unsubs[0]?.code, 2500);
    const offsets = peer.offsets(CHANNEL);
    assert.deepEqual(offsets, range(1, offsets.length), 'what was delivered has no gap');
  });

  it('reads on when the publications held during a subscribe pass the bound', async () => {
    const { hub, broker } = await setup({ maxQueueBytes: 1024 });
    await publishMany(hub, 2);
    const slow = gate();
    broker.historyGate = slow.promise;
    const peer = new FakePeer();
    const session = hub.openSession(peer, credentials('u'));
    const pending = hub.subscribe(session, CHANNEL);
    await settle(() => broker.historyQueries.length > 0, 'the history read');
    await publishMany(hub, 20, 'w'.repeat(100)); // held: over the 1 KiB bound, so dropped
    broker.historyGate = undefined;
    slow.open();
    const outcome = await pending;
    assert.equal(outcome.more, true, 'the dropped ones come from history');
    await hub.activate(outcome, peer);
    assert.deepEqual(peer.offsets(CHANNEL), range(3, 22));
  });
});

describe('presence identity per subscription', () => {
  it('shows a subscription as its member identity when the subscribe gives one, else as its token', async () => {
    const { hub } = await setup();
    const watcher = new FakePeer();
    const w = hub.openSession(watcher, credentials('w'));
    await hub.activate(await hub.subscribe(w, CHANNEL, { joinLeave: true }), watcher);
    const peer = new FakePeer();
    const session = hub.openSession(peer, credentials('token-user'));
    const outcome = await hub.subscribe(session, CHANNEL, { member: { userId: 'pusher-user', info: { name: 'P' } } });
    await hub.activate(outcome, peer);
    const listed = await hub.presence(CHANNEL);
    assert.deepEqual(
      listed.find((c) => c.clientId === session.id),
      { clientId: session.id, userId: 'pusher-user', info: { name: 'P' } },
    );
    await settle(() => watcher.joinLeaves.length === 1, 'the join');
    assert.equal(watcher.joinLeaves[0]?.client.userId, 'pusher-user');
    hub.unsubscribe(session, CHANNEL);
    await settle(() => watcher.joinLeaves.length === 2, 'the leave');
    assert.deepEqual(watcher.joinLeaves[1], {
      kind: 'leave',
      channel: CHANNEL,
      client: listed.find((c) => c.clientId === session.id),
    });
  });
});

describe('Session: the queue bound', () => {
  it('drops ephemeral publications past half the bound, and ends with 4004 past the bound', async () => {
    const { hub } = await setup({ maxQueueBytes: 1000 });
    const peer = new FakePeer();
    const { session } = await subscribed(hub, peer);
    peer.buffered = 600;
    await hub.publish({ channel: CHANNEL, data: 'typing', ephemeral: true });
    assert.equal(peer.written.length, 0);
    assert.equal(hub.stats.ephemeralDropped, 1);
    await hub.publish({ channel: CHANNEL, data: 'kept' });
    assert.deepEqual(peer.offsets(CHANNEL), [1], 'stored ones still go');
    peer.buffered = 1001;
    await hub.publish({ channel: CHANNEL, data: 'too much' });
    assert.equal(peer.ended?.code, 4004);
    assert.equal(peer.ended?.reconnect, true);
    assert.equal(session.closed, true);
  });
});

describe('CommandSession', () => {
  function commands(hub: Hub, peer: FakePeer, rate = { perSecond: 100, burst: 200 }): CommandSession<number> {
    return new CommandSession(hub, peer, {
      authenticate: (token) => {
        if (token === 'good') return credentials('u', ['c:*']);
        throw Object.assign(new Error('bad'), { name: 'HeraldError' });
      },
      commandRate: rate,
      pingIntervalSeconds: 25,
      connectCommand: true,
    });
  }

  it('answers in order, even behind a command that waits', async () => {
    const { hub, broker } = await setup();
    const peer = new FakePeer();
    const session = commands(hub, peer);
    session.receive(1, 'connect', { token: 'good' });
    const slow = gate();
    broker.historyGate = slow.promise;
    session.receive(2, 'history', { channel: CHANNEL });
    session.receive(3, 'ping', {});
    await settle(() => broker.historyQueries.length > 0, 'the history read');
    assert.deepEqual(
      peer.answers.map((a) => a.id),
      [1],
    );
    slow.open();
    await settle(() => peer.answers.length === 3, 'the answers');
    assert.deepEqual(
      peer.answers.map((a) => a.answer.method),
      ['connect', 'history', 'ping'],
    );
  });

  it('ends with 4005 past the command rate, on the injected clock', async () => {
    const { hub } = await setup();
    const peer = new FakePeer();
    const session = commands(hub, peer, { perSecond: 2, burst: 3 });
    session.receive(1, 'connect', { token: 'good' });
    session.receive(2, 'ping', {});
    session.receive(3, 'ping', {});
    clock += 1000; // two more tokens
    session.receive(4, 'ping', {});
    session.receive(5, 'ping', {});
    assert.equal(peer.endedCode(), undefined);
    session.receive(6, 'ping', {});
    assert.equal(peer.endedCode(), 4005);
    assert.equal(hub.stats.rateLimited, 1);
  });

  it('ends with 4005 past 64 commands waiting', async () => {
    const { hub, broker } = await setup();
    const peer = new FakePeer();
    const session = commands(hub, peer);
    session.receive(1, 'connect', { token: 'good' });
    broker.historyGate = gate().promise; // never opens: every history waits
    for (let id = 2; id <= 65; id++) session.receive(id, 'history', { channel: CHANNEL });
    assert.equal(peer.endedCode(), undefined, '64 may wait');
    session.receive(66, 'history', { channel: CHANNEL });
    assert.equal(peer.endedCode(), 4005);
  });

  it('answers a refused connect, then ends with 4001', async () => {
    const { hub } = await setup();
    const peer = new FakePeer();
    commands(hub, peer).receive(1, 'connect', { token: 'bad' });
    await settle(() => peer.ended !== undefined, 'the end');
    assert.equal(peer.refusals[0]?.id, 1);
    assert.equal(peer.refusals[0]?.error.code, 'unauthorized');
    assert.equal(peer.ended?.code, 4001);
    assert.equal(peer.ended?.reconnect, false);
  });

  it('refuses reading channels outside the token, and closes 4002 on a first command that is not connect', async () => {
    const { hub } = await setup();
    const peer = new FakePeer();
    const session = commands(hub, peer);
    session.receive(1, 'connect', { token: 'good' });
    session.receive(2, 'presence', { channel: 'other:1' });
    session.receive(3, 'history', { channel: 'other:1' });
    await settle(() => peer.refusals.length === 2, 'the refusals');
    assert.deepEqual(
      peer.refusals.map((r) => r.error.code),
      ['forbidden', 'forbidden'],
    );
    const stranger = new FakePeer();
    commands(hub, stranger).receive(1, 'ping', {});
    assert.equal(stranger.ended?.code, 4002);
  });

  it('waits for the client to read before the next answer, and ends it (4004) when it does not', async () => {
    const { hub } = await setup({ maxQueueBytes: 1000 });
    const peer = new FakePeer();
    const session = commands(hub, peer);
    session.receive(1, 'connect', { token: 'good' });
    peer.buffered = 5000;
    session.receive(2, 'ping', {});
    await settle(() => peer.waiting, 'the wait');
    assert.equal(peer.answers.length, 1, 'not answered while the client holds too much');
    peer.drain();
    await settle(() => peer.answers.length === 2, 'the answer');
    peer.buffered = 5000;
    session.receive(3, 'ping', {});
    await settle(() => peer.waiting, 'the second wait');
    peer.drain(false);
    await settle(() => peer.ended !== undefined, 'the end');
    assert.equal(peer.ended?.code, 4004);
  });

  it('ends subscriptions a refreshed token no longer permits, with unsub 2403', async () => {
    const { hub } = await setup();
    const peer = new FakePeer();
    const session = new CommandSession(hub, peer, {
      authenticate: (token) => credentials('u', token === 'narrow' ? ['d:*'] : ['c:*']),
      commandRate: { perSecond: 100, burst: 200 },
      pingIntervalSeconds: 25,
      connectCommand: true,
    });
    session.receive(1, 'connect', { token: 'wide' });
    session.receive(2, 'subscribe', { channel: CHANNEL });
    session.receive(3, 'refresh', { token: 'narrow' });
    await settle(() => peer.answers.length === 3, 'the answers');
    assert.deepEqual(peer.unsubs, [{ channel: CHANNEL, code: 2403, reason: 'no longer permitted' }]);
    assert.equal(session.session?.subscriptions.size, 0);
  });
});
