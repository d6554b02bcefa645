/**
 * One conformance suite for the webhook outbox, run against every implementation: memory, Redis
 * (real server: Stream, consumer group, Lua) and NATS (real JetStream work queue). Two outboxes on
 * one backend play two hub nodes; closing one without settling what it holds is what a crash
 * looks like to the backend (Redis keeps the entry pending, JetStream waits for the ack).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it, type TestContext } from 'node:test';
import { connect } from 'nats';
import {
  MemoryOutbox,
  NatsOutbox,
  RedisOutbox,
  createEvent,
  type Claim,
  type OutgoingEvent,
  type Outbox,
} from '../src/index.ts';
import { requireService, type ServiceName } from '../../../test/support/services.ts';
import { deleteRedisPrefix } from '../../../test/cluster/support.ts';

const RUN = randomUUID().slice(0, 8);
/** The claim timeout of the crash test; other tests hold claims longer than this, but not 10 s. */
const CLAIM_IDLE_MS = 1000;
const LONG_CLAIM_IDLE_MS = 10_000;

interface Backend {
  readonly name: string;
  readonly service?: ServiceName;
  /** Outboxes of one `space` share their events, as the nodes of one deployment do. */
  make(space: string, capacity: number, claimIdleMs: number): Outbox;
  cleanup(): Promise<void>;
}

const spaces = new Set<string>();
const backends: Backend[] = [
  { name: 'memory', make: (_, capacity) => new MemoryOutbox(capacity), cleanup: async () => undefined },
  {
    name: 'redis',
    service: 'redis',
    make: (space, capacity, claimIdleMs) =>
      new RedisOutbox({
        url: 'redis://127.0.0.1:6379',
        prefix: `herald:{ob-${RUN}}:${space}:`,
        capacity,
        claimIdleMs,
      }),
    cleanup: () => deleteRedisPrefix('redis://127.0.0.1:6379', `herald:{ob-${RUN}}`),
  },
  {
    name: 'nats',
    service: 'nats',
    make: (space, capacity, claimIdleMs) => {
      spaces.add(space);
      return new NatsOutbox({
        url: 'nats://127.0.0.1:4222',
        namespace: `ob_${RUN}_${space}`,
        capacity,
        claimIdleMs,
        storage: 'memory',
      });
    },
    async cleanup() {
      const nc = await connect({ servers: '127.0.0.1:4222' });
      const jsm = await nc.jetstreamManager();
      for (const space of spaces) await jsm.streams.delete(`herald_webhooks_ob_${RUN}_${space}`).catch(() => undefined);
      await nc.close();
    },
  },
];

const never = new AbortController().signal;

async function claimOnce(outbox: Outbox, max: number, waitMs = 100): Promise<Claim[]> {
  const claims: Claim[] = [];
  // The in-process outbox waits on an unref'd timer (an idle dispatcher must not keep a process
  // alive): hold the event loop open meanwhile.
  const alive = setTimeout(() => undefined, waitMs + 5000);
  try {
    for await (const claim of outbox.claim(max, waitMs, never)) claims.push(claim);
  } finally {
    clearTimeout(alive);
  }
  return claims;
}

/** Claims until `count` claims came back, or `timeoutMs` passed (then returns what it has). */
async function claimUntil(outbox: Outbox, count: number, timeoutMs = 10_000): Promise<Claim[]> {
  const claims: Claim[] = [];
  const deadline = Date.now() + timeoutMs;
  while (claims.length < count && Date.now() < deadline)
    claims.push(...(await claimOnce(outbox, count - claims.length)));
  return claims;
}

/** Claims until a claim comes back empty: everything claimable now. */
async function claimAll(outbox: Outbox): Promise<Claim[]> {
  const claims: Claim[] = [];
  for (let round = 0; round < 100; round++) {
    const got = await claimOnce(outbox, 10);
    if (got.length === 0) break;
    claims.push(...got);
  }
  return claims;
}

const events = (n: number, tag: string): OutgoingEvent[] =>
  Array.from({ length: n }, (_, i) => createEvent('user.online', JSON.stringify({ userId: `${tag}-${i}` })));

const ids = (list: ReadonlyArray<{ id: string } | Claim>): string[] =>
  list.map((x) => ('event' in x ? x.event.id : x.id)).sort();

for (const backend of backends) {
  describe(`webhook outbox conformance: ${backend.name}`, () => {
    const open: Outbox[] = [];
    let space = 0;
    /** A fresh shared space and `nodes` outboxes on it, started. */
    const nodes = async (
      t: TestContext,
      count: number,
      capacity = 100,
      claimIdleMs = LONG_CLAIM_IDLE_MS,
    ): Promise<Outbox[] | undefined> => {
      if (backend.service !== undefined && !(await requireService(t, backend.service))) return undefined;
      const name = `s${++space}`;
      const list = Array.from({ length: count }, () => backend.make(name, capacity, claimIdleMs));
      for (const outbox of list) {
        await outbox.start();
        open.push(outbox);
      }
      return list;
    };
    after(async () => {
      for (const outbox of open) await outbox.close().catch(() => undefined);
      await backend.cleanup();
    });

    it('keeps an event as it was appended; an acknowledged event is gone', async (t) => {
      const [outbox] = (await nodes(t, 1)) ?? [];
      if (outbox === undefined) return;
      const [event] = events(1, 'keep') as [OutgoingEvent];
      assert.deepEqual(await outbox.append(event), []);
      assert.equal(await outbox.size(), 1);
      const [claim, ...more] = await claimUntil(outbox, 1);
      assert.deepEqual(more, []);
      assert.deepEqual(claim?.event, { ...event, attempts: 0 });
      await claim?.ack();
      assert.equal(await outbox.size(), 0);
      assert.deepEqual(await claimOnce(outbox, 10), []);
    });

    it('hands every event to one claimer at a time, in any order, until it is settled', async (t) => {
      const list = await nodes(t, 2);
      if (list === undefined) return;
      const [a, b] = list as [Outbox, Outbox];
      const appended = events(20, 'spread');
      for (const [i, event] of appended.entries()) await (i % 2 === 0 ? a : b).append(event);
      const claimed: Claim[] = [];
      const deadline = Date.now() + 10_000;
      // Both nodes claim at once, five at a time, without settling anything yet.
      while (claimed.length < appended.length && Date.now() < deadline) {
        const [fromA, fromB] = await Promise.all([claimOnce(a, 5), claimOnce(b, 5)]);
        claimed.push(...fromA, ...fromB);
      }
      assert.deepEqual(ids(claimed), ids(appended), 'each event claimed exactly once');
      assert.deepEqual(await claimOnce(a, 5), [], 'nothing claimable while held');
      for (const claim of claimed) await claim.ack();
      assert.equal(await a.size(), 0);
    });

    it('a retried event comes back after its delay, to any node, with its attempts counted', async (t) => {
      const list = await nodes(t, 2);
      if (list === undefined) return;
      const [a, b] = list as [Outbox, Outbox];
      // In-process outboxes are each their own deployment: the event comes back to the same one.
      const other = a.durable ? b : a;
      const [event] = events(1, 'retry') as [OutgoingEvent];
      await a.append(event);
      const [claim] = await claimUntil(a, 1);
      assert.ok(claim);
      claim.event.attempts++; // what the dispatcher does before its attempt
      const delayMs = 1500;
      const retriedAt = Date.now();
      await claim.retry(delayMs);
      const [again] = await claimUntil(other, 1);
      assert.ok(again, 'the retried event came back');
      assert.ok(Date.now() - retriedAt >= delayMs - 5, 'not before its delay');
      assert.equal(again.event.id, event.id);
      assert.equal(again.event.body, event.body);
      assert.equal(again.event.attempts, 1);
      await again.ack();
      assert.equal(await other.size(), 0);
    });

    it('is bounded: a full outbox gives up its oldest events, never one being sent', async (t) => {
      const [outbox] = (await nodes(t, 1, 3)) ?? [];
      if (outbox === undefined) return;
      const appended = events(5, 'bound');
      const dropped: OutgoingEvent[] = [];
      for (const event of appended) dropped.push(...(await outbox.append(event)));
      assert.deepEqual(
        dropped.map((e) => e.id),
        appended.slice(0, 2).map((e) => e.id),
        'the two oldest, in order',
      );
      assert.equal(await outbox.size(), 3);
      const held = await claimUntil(outbox, 1);
      assert.equal(held.length, 1);
      const more = events(3, 'bound-more');
      for (const event of more) dropped.push(...(await outbox.append(event)));
      const heldId = held[0]?.event.id;
      assert.ok(!dropped.some((e) => e.id === heldId), 'the held event is not dropped');
      assert.ok((await outbox.size()) <= 3);
      const rest = await claimAll(outbox);
      const kept = new Set(ids([...held, ...rest]));
      // Every event is either kept or dead-lettered (dropped), never both, never neither.
      for (const event of [...appended, ...more]) {
        assert.notEqual(
          kept.has(event.id),
          dropped.some((d) => d.id === event.id),
          `event ${event.id}`,
        );
      }
      for (const claim of [...held, ...rest]) await claim.ack();
    });

    if (backend.name === 'memory') {
      it('is volatile: close hands back what it still holds', async (t) => {
        const [outbox] = (await nodes(t, 1)) ?? [];
        if (outbox === undefined) return;
        const appended = events(2, 'close');
        for (const event of appended) await outbox.append(event);
        const [claim] = await claimUntil(outbox, 1);
        await claim?.retry(60_000);
        assert.equal(outbox.durable, false);
        assert.deepEqual(ids(await outbox.close()), ids(appended));
      });
      return;
    }

    it('is durable: events outlive the outbox that appended them', async (t) => {
      const list = await nodes(t, 2);
      if (list === undefined) return;
      const [a, b] = list as [Outbox, Outbox];
      const appended = events(3, 'durable');
      for (const event of appended) await a.append(event);
      assert.equal(a.durable, true);
      assert.deepEqual(await a.close(), []);
      const claims = await claimUntil(b, 3);
      assert.deepEqual(ids(claims), ids(appended));
      for (const claim of claims) await claim.ack();
    });

    it('at least once: events held by a node that died go to another node after the claim timeout', async (t) => {
      const list = await nodes(t, 3, 100, CLAIM_IDLE_MS);
      if (list === undefined) return;
      const [a, b, c] = list as [Outbox, Outbox, Outbox];
      const appended = events(4, 'crash');
      for (const event of appended) await a.append(event);
      const claimedAt = Date.now();
      const held = await claimUntil(a, 4);
      assert.equal(held.length, 4);
      // The node dies holding them: no ack, no retry.
      await a.close();
      const taken = await claimUntil(b, 4, 10_000);
      assert.ok(Date.now() - claimedAt >= CLAIM_IDLE_MS - 5, 'not before the claim timeout');
      assert.deepEqual(ids(taken), ids(appended), 'every held event, to the other node');
      for (const claim of taken) {
        assert.equal(claim.event.attempts, 1, 'the interrupted attempt counts');
        assert.equal(claim.event.body, appended.find((e) => e.id === claim.event.id)?.body);
      }
      for (const claim of taken) await claim.ack();
      // Settled for good: no third node gets them, even after another claim timeout.
      await new Promise((resolve) => setTimeout(resolve, CLAIM_IDLE_MS * 1.5));
      assert.deepEqual(await claimOnce(c, 10, 1000), []);
      assert.equal(await c.size(), 0);
    });
  });
}
