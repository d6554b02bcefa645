/**
 * One conformance suite for the push store, run against every implementation: memory (one
 * process: both "nodes" are the same store), Redis (real server, Lua) and NATS KV (real JetStream,
 * compare-and-set). Two stores on one server play two hub nodes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it, type TestContext } from 'node:test';

import {
  MemoryPushStore,
  NatsPushStore,
  RedisPushStore,
  pushSubscriptionId,
  type PushStore,
  type PushSubscriptionRecord,
} from '../src/index.ts';
import { deleteRedisPrefix, REDIS_URL } from '../../../test/support/redis.ts';
import { requireService, type ServiceName } from '../../../test/support/services.ts';
import { sleep } from '../../../test/support/hub.ts';
import { deleteNatsBuckets } from './support/nats-buckets.ts';

const RUN = randomUUID().slice(0, 8);
const NATS_BUCKET = `herald_push_test_${RUN}`;

interface Backend {
  readonly name: string;
  readonly service?: ServiceName;
  make(): PushStore;
  cleanup(): Promise<void>;
}

const memory = new MemoryPushStore();
const backends: Backend[] = [
  { name: 'memory', make: () => memory, cleanup: async () => undefined },
  {
    name: 'redis',
    service: 'redis',
    make: () => new RedisPushStore({ url: 'redis://127.0.0.1:6379', prefix: `herald:{test-${RUN}}:push:` }),
    cleanup: () => deleteRedisPrefix(REDIS_URL, `herald:{test-${RUN}}`),
  },
  {
    name: 'nats',
    service: 'nats',
    make: () => new NatsPushStore({ url: 'nats://127.0.0.1:4222', bucket: NATS_BUCKET }),
    cleanup: () => deleteNatsBuckets(NATS_BUCKET),
  },
];

let endpoints = 0;
/** A subscription record as the routes build it; `createdAt` orders eviction. */
function subscription(createdAt = Date.now()): PushSubscriptionRecord {
  const endpoint = `https://push.example/${RUN}/${++endpoints}`;
  return {
    id: pushSubscriptionId(endpoint),
    endpoint,
    keys: { p256dh: 'BA'.padEnd(87, 'A'), auth: 'A'.repeat(22) },
    createdAt,
    expirationTime: null,
  };
}

const ids = async (store: PushStore, user: string): Promise<string[]> =>
  (await store.listSubscriptions(user)).map((s) => s.id).sort();

/** Polls `check` every 50 ms; rejects after 5 s naming `what`. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

for (const backend of backends) {
  describe(`push store conformance: ${backend.name}`, () => {
    const open: PushStore[] = [];
    /** Two nodes on the backend, started; undefined when its service is missing (the test skips). */
    const nodes = async (t: TestContext): Promise<[PushStore, PushStore] | undefined> => {
      if (backend.service !== undefined && !(await requireService(t, backend.service))) return undefined;
      const pair: [PushStore, PushStore] = [backend.make(), backend.make()];
      for (const node of pair) await node.start();
      open.push(...pair);
      return pair;
    };
    after(async () => {
      for (const node of open) await node.close().catch(() => undefined);
      await backend.cleanup();
    });

    it('stores, lists, replaces and removes a user’s subscriptions, seen from every node', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const user = `u-${randomUUID()}`;
      assert.deepEqual(await b.listSubscriptions(user), []);
      const one = subscription();
      const two = subscription();
      await a.addSubscription(user, one, 10);
      await b.addSubscription(user, two, 10);
      const byId = (x: PushSubscriptionRecord, y: PushSubscriptionRecord): number => x.id.localeCompare(y.id);
      assert.deepEqual((await a.listSubscriptions(user)).sort(byId), [one, two].sort(byId));
      // The same endpoint registered again replaces its record (a browser re-subscribing).
      const again = { ...one, keys: { ...one.keys, auth: 'B'.repeat(22) }, createdAt: one.createdAt + 1 };
      await b.addSubscription(user, again, 10);
      const listed = await a.listSubscriptions(user);
      assert.equal(listed.length, 2);
      assert.deepEqual(
        listed.find((s) => s.id === one.id),
        again,
      );
      assert.equal(await a.removeSubscription(user, one.id), true);
      assert.equal(await b.removeSubscription(user, one.id), false, 'already removed');
      assert.equal(await b.removeSubscription(`other-${user}`, two.id), false, 'not that user’s');
      assert.deepEqual(await ids(b, user), [two.id]);
      assert.equal(await b.removeSubscription(user, two.id), true);
      assert.deepEqual(await a.listSubscriptions(user), []);
    });

    it('moves an endpoint to the user who registered it last, across nodes', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const first = `first-${randomUUID()}`;
      const second = `second-${randomUUID()}`;
      const shared = subscription();
      const own = subscription();
      await a.addSubscription(first, shared, 10);
      await a.addSubscription(first, own, 10);
      await b.addSubscription(second, { ...shared, createdAt: shared.createdAt + 1 }, 10);
      assert.deepEqual(await ids(a, first), [own.id], 'the first user no longer gets pushes there');
      assert.deepEqual(await ids(a, second), [shared.id]);
      assert.equal(await a.removeSubscription(first, shared.id), false, 'the first user cannot remove it');
      assert.deepEqual(await ids(b, second), [shared.id]);
      // And back to the first user.
      await a.addSubscription(first, shared, 10);
      assert.deepEqual(await ids(b, first), [own.id, shared.id].sort());
      assert.deepEqual(await ids(b, second), []);
    });

    it('keeps at most max per user: the oldest goes, never the one being added', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const user = `u-${randomUUID()}`;
      const t0 = Date.now();
      const subs = [subscription(t0 + 30), subscription(t0 + 10), subscription(t0 + 20)];
      for (const sub of subs) await a.addSubscription(user, sub, 2);
      assert.deepEqual(await ids(b, user), [subs[0]!.id, subs[2]!.id].sort(), 'the one created first went');
      // A newcomer older than all the others still stays: the others go.
      const old = subscription(t0);
      await b.addSubscription(user, old, 1);
      assert.deepEqual(await ids(a, user), [old.id]);
      // The evicted endpoint no longer belongs to the user: another user takes it without trace.
      const other = `other-${randomUUID()}`;
      await b.addSubscription(other, subs[1]!, 2);
      assert.deepEqual(await ids(a, other), [subs[1]!.id]);
      assert.deepEqual(await ids(a, user), [old.id]);
    });

    it('converges when two users register one endpoint at the same time on two nodes', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const users = [`x-${randomUUID()}`, `y-${randomUUID()}`];
      for (let round = 0; round < 20; round++) {
        const sub = subscription();
        await Promise.all([
          a.addSubscription(users[0]!, sub, 10),
          b.addSubscription(users[1]!, sub, 10),
          b.addSubscription(users[0]!, sub, 10),
          a.addSubscription(users[1]!, sub, 10),
        ]);
        const holders = [];
        for (const user of users) if ((await ids(a, user)).includes(sub.id)) holders.push(user);
        assert.equal(holders.length, 1, `round ${round}: listed by ${JSON.stringify(holders)}`);
      }
    });

    it('keeps preferences per user, shared by every node', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const user = `u-${randomUUID()}`;
      assert.equal(await a.getPreferences(user), undefined);
      const quiet = { muted: ['news:*'], quietHours: { start: '22:00', end: '07:00', timeZone: 'Europe/Paris' } };
      await a.setPreferences(user, quiet);
      assert.deepEqual(await b.getPreferences(user), quiet);
      await b.setPreferences(user, { muted: [], quietHours: null });
      assert.deepEqual(await a.getPreferences(user), { muted: [], quietHours: null });
      assert.equal(await a.getPreferences(`other-${user}`), undefined);
    });

    it('claims a publication once across nodes, also when claimed at the same time', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const key = `user:${randomUUID()}:epoch:7`;
      assert.equal(await a.claimOnce(key, 3600), true);
      assert.equal(await a.claimOnce(key, 3600), false);
      assert.equal(await b.claimOnce(key, 3600), false);
      assert.equal(await b.claimOnce(`${key}0`, 3600), true, 'another key');
      for (let round = 0; round < 10; round++) {
        const contested = `race:${randomUUID()}`;
        const wins = await Promise.all([a, b, a, b].map((node) => node.claimOnce(contested, 3600)));
        assert.equal(wins.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify(wins)}`);
      }
    });

    it('forgets a claim after its TTL', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const key = `short:${randomUUID()}`;
      assert.equal(await a.claimOnce(key, 1), true);
      assert.equal(await b.claimOnce(key, 1), false);
      // A long-lived claim next to it is not cut short by the short one.
      const long = `long:${randomUUID()}`;
      assert.equal(await b.claimOnce(long, 3600), true);
      const started = Date.now();
      await eventually(() => b.claimOnce(key, 1), 'the claim to expire');
      t.diagnostic(JSON.stringify({ claimExpiredAfterMs: Date.now() - started }));
      assert.equal(await a.claimOnce(key, 1), false, 'claimed again by the node that saw it expire');
      assert.equal(await a.claimOnce(long, 3600), false);
    });

    it('rate-limits per user across nodes, exactly, also under concurrent takes', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      // A day-long window: the test never straddles two windows (but at midnight UTC).
      const user = `u-${randomUUID()}`;
      const taken = [];
      for (const node of [a, b, a, b, a]) taken.push(await node.takeRateToken(user, 3, 86_400));
      assert.deepEqual(taken, [true, true, true, false, false]);
      assert.equal(await b.takeRateToken(`other-${user}`, 3, 86_400), true, 'another user has its own count');
      const busy = `busy-${randomUUID()}`;
      const takes = await Promise.all(
        Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).takeRateToken(busy, 5, 86_400)),
      );
      assert.equal(takes.filter(Boolean).length, 5, JSON.stringify(takes));
    });

    it('starts a new count in the next window', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const user = `u-${randomUUID()}`;
      let exhausted = false;
      for (let i = 0; i < 4 && !exhausted; i++) exhausted = !(await a.takeRateToken(user, 1, 1));
      assert.equal(exhausted, true, 'one token per one-second window');
      await eventually(() => b.takeRateToken(user, 1, 1), 'a token in the next window');
    });

    it('shares the VAPID key pair of the first node', async (t) => {
      const pair = await nodes(t);
      if (pair === undefined) return;
      const [a, b] = pair;
      const first = { publicKey: `pub-${RUN}-a`, privateKey: `priv-${RUN}-a` };
      const stored = await a.sharedVapidKeys(first);
      assert.deepEqual(stored, first, 'nothing was stored: the candidate is kept');
      const seen = await b.sharedVapidKeys({ publicKey: `pub-${RUN}-b`, privateKey: `priv-${RUN}-b` });
      assert.deepEqual(seen, stored);
      assert.deepEqual(await a.sharedVapidKeys({ publicKey: 'x', privateKey: 'y' }), stored);
    });
  });
}
