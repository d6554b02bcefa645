/**
 * Resume after a reconnect, as a Socket.IO application does it (subscribe with `since` on every
 * `connect`): gapless across a cut connection while a publisher runs, `recovered: false` after a
 * restart of a hub on the memory broker, and across nodes on a shared broker with WebSocket-only
 * clients (no sticky sessions needed).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Broker, PresenceStore } from '@herald/server';
import { publish, sleep, token, until } from '../../../test/support/hub.ts';
import { RestartableAt } from '../../../test/support/hub-restart.ts';
import { requireService } from '../../../test/support/services.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import { MODES, ResumingSubscriber, SioClient, startSioHub } from './support.ts';

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Publishes `count` publications one after another through the HTTP API, calling `at(i)` before each. */
async function publisher(
  hub: { url: string },
  channel: string,
  count: number,
  at: (i: number) => Promise<void> | void = () => undefined,
): Promise<void> {
  for (let i = 1; i <= count; i++) {
    await at(i);
    await publish(hub as never, channel, { i });
    await sleep(2);
  }
}

describe('Socket.IO resume', () => {
  it('is gapless across cut connections while a publisher runs (every mode)', async () => {
    const hub = await startSioHub();
    const proxy = new TcpProxy(hub.port);
    await proxy.listen();
    const jwt = await token();
    const subscribers = await Promise.all(
      MODES.map(async (mode) => {
        const client = await SioClient.connect(proxy.url, mode, { auth: { token: jwt } });
        return new ResumingSubscriber(client, `resume-cut:${mode}`);
      }),
    );
    try {
      await until(() => subscribers.every((s) => s.acks.length === 1), 'the first subscribe acks');
      const count = 150;
      let published = 0;
      const publishing = Promise.all(
        subscribers.map((s, n) => publisher(hub, s.channel, count, () => void (n === 0 && published++))),
      );
      // Two outages while the publisher runs. A long-polling client has no connection open between
      // two requests, so the proxy cuts until every client has lost its connection.
      for (const [at, outage] of [
        [40, 1],
        [100, 2],
      ] as const) {
        await until(() => published >= at, `publication ${at}`, 20_000);
        for (let i = 0; i < 400 && !subscribers.every((s) => s.client.disconnects.length >= outage); i++) {
          proxy.cutAll();
          await sleep(5);
        }
      }
      await publishing;
      await until(
        () => subscribers.every((s) => s.offsets().length >= count),
        'every publication at every client',
        30_000,
      );
      for (const s of subscribers) {
        assert.deepEqual(s.offsets(), range(1, count), `${s.channel}: every offset once, in order`);
        assert.ok(s.client.connects >= 3, `${s.channel} reconnected after each outage (${s.client.connects})`);
        const resumed = s.acks.slice(1);
        assert.equal(resumed.length, s.client.connects - 1);
        for (const ack of resumed) assert.equal(ack.recovered, true, `${s.channel}: ${JSON.stringify(ack)}`);
      }
    } finally {
      for (const s of subscribers) s.client.close();
      await proxy.close();
      await hub.close();
    }
  });

  it('says recovered: false after the hub restarts on the memory broker, then goes on', async () => {
    const hub = await RestartableAt.start(() => startSioHub());
    const jwt = await token();
    const subscribers = await Promise.all(
      MODES.map(async (mode) => {
        const client = await SioClient.connect(hub.url, mode, { auth: { token: jwt } });
        return new ResumingSubscriber(client, `resume-restart:${mode}`);
      }),
    );
    try {
      await until(() => subscribers.every((s) => s.acks.length === 1), 'the first subscribe acks');
      for (const s of subscribers) await publish(hub, s.channel, 'before');
      await until(() => subscribers.every((s) => s.offsets().length === 1), 'the first publications');
      const oldEpoch = subscribers[0]?.position?.epoch;
      // Drain: every client is told 1001 and reconnects by itself, here to the restarted hub.
      await hub.down();
      await until(() => subscribers.every((s) => !s.client.socket.connected), 'the disconnects');
      for (const s of subscribers) {
        assert.deepEqual(s.client.events('herald.disconnect')[0]?.[0], {
          code: 1001,
          reason: 'hub going away',
          reconnect: true,
        });
      }
      await hub.up();
      await until(() => subscribers.every((s) => s.acks.length === 2), 'the resubscribe acks', 20_000);
      for (const s of subscribers) {
        const ack = s.acks[1];
        assert.equal(ack.ok, true);
        assert.equal(ack.recovered, false, 'a new memory broker has new streams: nothing to recover');
        assert.notEqual(ack.epoch, oldEpoch);
        await publish(hub, s.channel, 'after');
      }
      await until(() => subscribers.every((s) => s.offsets().length === 2), 'the publications after the restart');
      for (const s of subscribers) {
        const [, after] = s.client.publications(s.channel);
        assert.equal(after.data, 'after');
        assert.equal(after.offset, 1);
      }
    } finally {
      for (const s of subscribers) s.client.close();
      await hub.close();
    }
  });

  for (const kind of ['redis', 'nats', 'memory'] as const) {
    it(`moves WebSocket-only clients between nodes without sticky sessions (${kind} broker)`, async (t) => {
      const shared = await sharedBackends(t, kind);
      if (shared === undefined) return;
      const [a, b] = await Promise.all(shared.backends.map((backend) => startSioHub(backend)));
      assert.ok(a && b);
      const proxy = new TcpProxy(a.port);
      await proxy.listen();
      const channel = `resume-nodes:${randomBytes(4).toString('hex')}`;
      const client = await SioClient.connect(proxy.url, 'websocket', { auth: { token: await token() } });
      const s = new ResumingSubscriber(client, channel);
      try {
        await until(() => s.acks.length === 1, 'the first subscribe ack');
        const count = 60;
        // The publisher talks to node B; the client starts on node A, then is cut and lands on B.
        await publisher(b, channel, count, (i) => {
          if (i === 30) {
            proxy.retarget(b.port);
            proxy.cutAll();
          }
        });
        await until(() => s.acks.length === 2, 'the resubscribe on node B', 20_000);
        const ack = s.acks[1];
        t.diagnostic(`resubscribe on node B after ${client.connects - 1} reconnect(s): ${JSON.stringify(ack)}`);
        assert.equal(b.server.hub.stats.connections.socketio, 1, 'the client is on node B');
        if (kind === 'memory') {
          // Separate memory brokers are separate streams: the honest answer is recovered: false.
          assert.equal(ack.recovered, false);
        } else {
          await until(() => s.offsets().length >= count, 'every publication', 20_000);
          assert.equal(ack.recovered, true);
          assert.deepEqual(s.offsets(), range(1, count));
        }
      } finally {
        client.close();
        await proxy.close();
        await Promise.all([a.close(), b.close()]);
      }
    });
  }
});

type Backend = { broker: Broker; presence: PresenceStore } | Record<never, never>;

/**
 * Two nodes' backends on one broker service, or two separate memory brokers. Undefined (the test
 * skipped) when the service is missing, or its broker package is still a stub.
 */
async function sharedBackends(
  t: Parameters<typeof requireService>[0],
  kind: 'redis' | 'nats' | 'memory',
): Promise<{ backends: Backend[] } | undefined> {
  if (kind === 'memory') return { backends: [{}, {}] };
  if (!(await requireService(t, kind))) return undefined;
  const history = { size: 1000, ttlSeconds: 60 };
  // One fixed prefix for these tests (channels are random per run), apart from other suites' keys.
  const prefix = 'herald-sio-test';
  try {
    if (kind === 'redis') {
      const { createRedisBackend } = await import('@herald/broker-redis');
      const options = { url: 'redis://127.0.0.1:6379', history, prefix };
      return { backends: await Promise.all([createRedisBackend(options), createRedisBackend(options)]) };
    }
    const { createNatsBackend } = await import('@herald/broker-nats');
    const options = { url: 'nats://127.0.0.1:4222', history, prefix, storage: 'memory' as const };
    return { backends: await Promise.all([createNatsBackend(options), createNatsBackend(options)]) };
  } catch (error) {
    if (!/being built/.test(String(error))) throw error;
    t.skip(`the ${kind} broker package is not built yet`);
    return undefined;
  }
}
