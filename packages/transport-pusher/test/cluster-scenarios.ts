/**
 * Pusher on two `herald serve` processes sharing one Redis or NATS, written once and run on each
 * broker: presence members across nodes, events triggered on one node received on the other,
 * client events across nodes, a user sent to and terminated everywhere, and a dead node's
 * members gone within the presence TTL. Real pusher-js clients, the real `pusher` SDK.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SERVICES, REQUIRE_SERVICES, requireService } from '../../../test/support/services.ts';
import {
  HubNode,
  buildOnce,
  deleteNatsNamespace,
  deleteRedisPrefix,
  sleep,
  uniquePrefix,
  until,
} from '../../../test/cluster/support.ts';
import { HttpProxy } from '../../../test/support/http-proxy.ts';
import { APP, OTHER_APP, TestClient, serverSdk } from './support.ts';

export type BrokerKind = 'redis' | 'nats';

const SHARED_URL: Record<BrokerKind, string> = { redis: 'redis://127.0.0.1:6379', nats: 'nats://127.0.0.1:4222' };
const PRESENCE_TTL_S = 2;

export function pusherClusterScenarios(kind: BrokerKind): void {
  describe(`Pusher on two hub processes over ${kind}`, { concurrency: false }, () => {
    const prefix = uniquePrefix();
    const url = kind === 'redis' ? `${SHARED_URL.redis}/0?prefix=${prefix}` : `${SHARED_URL.nats}?prefix=${prefix}`;
    let a: HubNode;
    let b: HubNode;
    const clients: TestClient[] = [];
    const client = (node: HubNode, options: ConstructorParameters<typeof TestClient>[1] = {}): TestClient => {
      const c = new TestClient(node.port, options);
      clients.push(c);
      return c;
    };

    before(async () => {
      if (!(await SERVICES[kind].check())) {
        if (REQUIRE_SERVICES) throw new Error(`needs ${SERVICES[kind].hint} (HERALD_REQUIRE_SERVICES=1)`);
        return;
      }
      await buildOnce();
      const env = { HERALD_PUSHER_APPS: JSON.stringify([APP, OTHER_APP]) };
      [a, b] = (await Promise.all(
        ['A', 'B'].map((name) => HubNode.start(name, { broker: url, presenceTtlSeconds: PRESENCE_TTL_S, env })),
      )) as [HubNode, HubNode];
    });

    after(async () => {
      for (const c of clients) c.close();
      a?.kill('SIGKILL');
      b?.kill('SIGKILL');
      if (await SERVICES[kind].check()) {
        await (kind === 'redis'
          ? deleteRedisPrefix(SHARED_URL.redis, prefix)
          : deleteNatsNamespace(SHARED_URL.nats, prefix));
      }
    });

    it('an event triggered through node A reaches subscribers on node B (events and batch_events)', async (t) => {
      if (!(await requireService(t, kind))) return;
      const onB = client(b);
      await onB.subscribe('private-orders');
      await serverSdk(a.port).trigger('private-orders', 'created', { id: 1 });
      await serverSdk(a.port).triggerBatch([{ channel: 'private-orders', name: 'created', data: { id: 2 } }]);
      const seen = await onB.waitFor('private-orders', 'created', 2);
      assert.deepEqual(
        seen.map((s) => s.data),
        [{ id: 1 }, { id: 2 }],
      );
    });

    it('presence members are cluster-wide: each node sees the other node’s members join and leave', async (t) => {
      if (!(await requireService(t, kind))) return;
      const alice = client(a, { member: { user_id: 'alice', user_info: { node: 'A' } } });
      await alice.subscribe('presence-lobby');
      const bob = client(b, { member: { user_id: 'bob', user_info: { node: 'B' } } });
      const view = await bob.subscribe('presence-lobby');
      assert.equal(view.count, 2);
      assert.deepEqual(view.members, { alice: { node: 'A' }, bob: { node: 'B' } });
      const [added] = await alice.waitFor('presence-lobby', 'pusher:member_added');
      assert.deepEqual(added?.data, { id: 'bob', info: { node: 'B' } });
      // Either node's API lists both.
      for (const node of [a, b]) {
        const users = await (await serverSdk(node.port).get({ path: '/channels/presence-lobby/users' })).json();
        assert.deepEqual(users.users.map((u: { id: string }) => u.id).sort(), ['alice', 'bob']);
      }
      // Client events cross nodes too, with the sender's user_id.
      bob.pusher.channel('presence-lobby').trigger('client-wave', { from: 'bob' });
      const [wave] = await alice.waitFor('presence-lobby', 'client-wave');
      assert.deepEqual(wave?.data, { from: 'bob' });
      bob.close();
      const [removed] = await alice.waitFor('presence-lobby', 'pusher:member_removed');
      assert.equal(removed?.data.id, 'bob');
    });

    it('send-to-user and terminate_connections reach the user’s connections on every node', async (t) => {
      if (!(await requireService(t, kind))) return;
      const onA = client(a, { user: { id: 'carol' } });
      const onB = client(b, { user: { id: 'carol' } });
      const bystander = client(b, { user: { id: 'dave' } });
      const got: string[] = [];
      for (const [c, node] of [
        [onA, 'A'],
        [onB, 'B'],
      ] as const) {
        c.pusher.user.bind('notice', () => got.push(node));
      }
      for (const c of [onA, onB, bystander]) c.pusher.signin();
      await until(
        () => [onA, onB].every((c) => (c.pusher.user as any).serverToUserChannel?.subscribed === true),
        'both #server-to-user- subscriptions',
      );
      await serverSdk(b.port).sendToUser('carol', 'notice', { text: 'hello' });
      await until(() => got.length === 2, 'the event on both nodes');
      assert.deepEqual(got.sort(), ['A', 'B']);
      await serverSdk(a.port).terminateUserConnections('carol');
      await until(
        () => onA.state !== 'connected' && onB.state !== 'connected',
        'carol’s connections on A and B to end',
      );
      await sleep(300);
      assert.equal(bystander.state, 'connected');
    });

    for (const transport of ['xhr_streaming', 'xhr_polling'] as const) {
      it(`${transport} through a load balancer that sends each request to the next node (no sticky sessions)`, async (t) => {
        if (!(await requireService(t, kind))) return;
        const proxy = new HttpProxy(a.port, { alsoTo: [b.port] });
        await proxy.listen();
        try {
          const c = new TestClient(proxy.port, { transports: [transport], member: { user_id: `lb-${transport}` } });
          clients.push(c);
          const presence = await c.subscribe(`presence-lb-${transport}`);
          assert.equal(presence.count, 1);
          await c.subscribe(`private-lb-${transport}`);
          const peer = client(b, { member: { user_id: 'peer' } });
          await peer.subscribe(`presence-lb-${transport}`);
          await c.waitFor(`presence-lb-${transport}`, 'pusher:member_added');
          for (let i = 0; i < 10; i++)
            await serverSdk(i % 2 === 0 ? a.port : b.port).trigger(`private-lb-${transport}`, 'n', { i });
          const seen = await c.waitFor(`private-lb-${transport}`, 'n', 10);
          assert.deepEqual(
            seen.map((s) => s.data.i),
            Array.from({ length: 10 }, (_, i) => i),
          );
          c.pusher.channel(`presence-lb-${transport}`).trigger('client-lb', { ok: 1 });
          await peer.waitFor(`presence-lb-${transport}`, 'client-lb');
          assert.ok(
            (proxy.forwarded.get(a.port) ?? 0) > 1 && (proxy.forwarded.get(b.port) ?? 0) > 1,
            'both nodes served requests',
          );
          c.close();
        } finally {
          await proxy.close();
        }
      });
    }

    it('a dead node’s members leave presence within the presence TTL, and its clients are told', async (t) => {
      if (!(await requireService(t, kind))) return;
      const watcher = client(a, { member: { user_id: 'watcher' } });
      await watcher.subscribe('presence-ttl');
      const onB = client(b, { member: { user_id: 'erin' } });
      await onB.subscribe('presence-ttl');
      await watcher.waitFor('presence-ttl', 'pusher:member_added');
      const sdk = serverSdk(a.port);
      const users = async (): Promise<string[]> =>
        (await (await sdk.get({ path: '/channels/presence-ttl/users' })).json()).users
          .map((u: { id: string }) => u.id)
          .sort();
      assert.deepEqual(await users(), ['erin', 'watcher']);
      b.kill('SIGKILL');
      const killedAt = Date.now();
      for (;;) {
        if ((await users()).length === 1) break;
        assert.ok(Date.now() - killedAt < (PRESENCE_TTL_S + 10) * 1000, 'erin is still present long after the TTL');
        await sleep(100);
      }
      // No node sends a leave for a dead node's members: the presence watch tells the client.
      const [removed] = await watcher.waitFor('presence-ttl', 'pusher:member_removed', 1, 30_000);
      assert.equal(removed?.data.id, 'erin');
    });
  });
}
