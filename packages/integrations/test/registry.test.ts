/**
 * One conformance suite for the connection registry, run against every implementation: memory
 * (nodes sharing one state), Redis (real server, Lua) and NATS KV (real JetStream). Two registries
 * play two hub nodes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it, type TestContext } from 'node:test';

import { connect } from 'nats';
import {
  MemoryConnectionRegistry,
  MemoryRegistryState,
  NatsConnectionRegistry,
  RedisConnectionRegistry,
  type ConnectionRegistry,
  type Transition,
} from '../src/index.ts';
import { deleteRedisPrefix, REDIS_URL } from '../../../test/support/redis.ts';
import { requireService, type ServiceName } from '../../../test/support/services.ts';
import { sleep } from '../../../test/support/hub.ts';

const RUN = randomUUID().slice(0, 8);
const NODE_TTL_MS = 600;

interface Backend {
  readonly name: string;
  readonly service?: ServiceName;
  make(): ConnectionRegistry;
  cleanup(): Promise<void>;
}

const memoryState = new MemoryRegistryState();
const backends: Backend[] = [
  {
    name: 'memory',
    make: () => new MemoryConnectionRegistry({ state: memoryState, nodeTtlMs: NODE_TTL_MS }),
    cleanup: async () => undefined,
  },
  {
    name: 'redis',
    service: 'redis',
    make: () =>
      new RedisConnectionRegistry({
        url: 'redis://127.0.0.1:6379',
        prefix: `herald:{test-${RUN}}:presence:`,
        nodeTtlMs: NODE_TTL_MS,
      }),
    cleanup: () => deleteRedisPrefix(REDIS_URL, `herald:{test-${RUN}}`),
  },
  {
    name: 'nats',
    service: 'nats',
    make: () =>
      new NatsConnectionRegistry({
        url: 'nats://127.0.0.1:4222',
        bucket: `herald_test_${RUN}`,
        nodeTtlMs: NODE_TTL_MS,
      }),
    async cleanup() {
      const nc = await connect({ servers: '127.0.0.1:4222' });
      await (await nc.jetstreamManager()).streams.delete(`KV_herald_test_${RUN}`).catch(() => undefined);
      await nc.close();
    },
  },
];

/** Sweeps every node until `done` holds for the transitions seen, or 5 s pass. */
async function sweepUntil(
  nodes: readonly ConnectionRegistry[],
  done: (seen: Transition[]) => boolean,
  seen: Transition[] = [],
): Promise<Transition[]> {
  const deadline = Date.now() + 5000;
  while (!done(seen)) {
    if (Date.now() > deadline) throw new Error(`timed out; saw ${JSON.stringify(seen)}`);
    for (const node of nodes) seen.push(...(await node.sweep()));
    await sleep(20);
  }
  return seen;
}

const downs = (seen: Transition[], id: string): number => seen.filter((t) => t.id === id && t.state === 'down').length;

for (const backend of backends) {
  describe(`connection registry conformance: ${backend.name}`, () => {
    const open: ConnectionRegistry[] = [];
    const nodes = async (t: TestContext, n: number): Promise<ConnectionRegistry[] | undefined> => {
      if (backend.service !== undefined && !(await requireService(t, backend.service))) return undefined;
      const list = Array.from({ length: n }, () => backend.make());
      for (const node of list) await node.start();
      open.push(...list);
      return list;
    };
    after(async () => {
      for (const node of open) await node.close().catch(() => undefined);
      await backend.cleanup().catch(() => undefined);
    });

    it('announces up once per id, however many nodes join it', async (t) => {
      const pair = await nodes(t, 2);
      if (pair === undefined) return;
      const [a, b] = pair as [ConnectionRegistry, ConnectionRegistry];
      const user = `u-${randomUUID()}`;
      assert.equal(await a.join('user', user), true);
      assert.equal(await b.join('user', user), false);
      assert.equal(await a.join('user', user), false);
      assert.equal(await a.isConnected('user', user), true);
      // Channels are counted apart from users, even with the same id.
      assert.equal(await b.join('channel', user), true);
    });

    it('announces down once, after the delay, when the last node leaves', async (t) => {
      const pair = await nodes(t, 2);
      if (pair === undefined) return;
      const [a, b] = pair as [ConnectionRegistry, ConnectionRegistry];
      const user = `u-${randomUUID()}`;
      await a.join('user', user);
      await b.join('user', user);
      await a.leave('user', user, 0);
      assert.equal(await a.isConnected('user', user), true, 'b still holds it');
      const early = [...(await a.sweep()), ...(await b.sweep())];
      assert.equal(downs(early, user), 0, 'no down while a node holds it');
      await b.leave('user', user, 150);
      assert.equal(await b.isConnected('user', user), false);
      const seen = await sweepUntil([a, b], (s) => downs(s, user) > 0);
      // More sweeps on both nodes: still one down.
      for (let i = 0; i < 3; i++) seen.push(...(await a.sweep()), ...(await b.sweep()));
      assert.equal(downs(seen, user), 1);
      assert.equal(await a.join('user', user), true, 'after the down, the next join is an up again');
    });

    it('does not announce a down/up pair for a leave followed by a join within the delay', async (t) => {
      const pair = await nodes(t, 2);
      if (pair === undefined) return;
      const [a, b] = pair as [ConnectionRegistry, ConnectionRegistry];
      const user = `u-${randomUUID()}`;
      assert.equal(await a.join('user', user), true);
      await a.leave('user', user, 300);
      assert.equal(await b.join('user', user), false, 'a reload that lands on another node');
      await sleep(400);
      const seen = [...(await a.sweep()), ...(await b.sweep())];
      assert.equal(downs(seen, user), 0);
      await b.leave('user', user, 0);
      assert.equal(downs(await sweepUntil([a, b], (s) => downs(s, user) > 0), user), 1);
    });

    it('takes the ids of a node that stopped heartbeating out, and announces their down', async (t) => {
      const pair = await nodes(t, 2);
      if (pair === undefined) return;
      const [a, b] = pair as [ConnectionRegistry, ConnectionRegistry];
      const user = `u-${randomUUID()}`;
      const channel = `room:${randomUUID()}`;
      await a.join('user', user);
      await a.join('channel', channel);
      await b.join('channel', channel);
      await a.close({ leave: false }); // a crash: nothing left, no more heartbeats
      const seen = await sweepUntil([b], (s) => downs(s, user) > 0);
      assert.equal(downs(seen, user), 1);
      assert.equal(downs(seen, channel), 0, 'b still holds the channel');
      assert.equal(await b.isConnected('channel', channel), true);
      assert.equal(await b.isConnected('user', user), false);
    });

    it('gives a node declared dead while alive (a long pause) its ids back, with an up', async (t) => {
      const pair = await nodes(t, 2);
      if (pair === undefined) return;
      const [a, b] = pair as [ConnectionRegistry, ConnectionRegistry];
      const user = `u-${randomUUID()}`;
      await a.join('user', user);
      // a does not sweep (heartbeat) while b does: b declares it dead and announces the down.
      assert.equal(downs(await sweepUntil([b], (s) => downs(s, user) > 0), user), 1);
      const back = await a.sweep();
      assert.deepEqual(
        back.filter((x) => x.id === user).map((x) => x.state),
        ['up'],
      );
      assert.equal(await b.isConnected('user', user), true);
    });
  });
}
