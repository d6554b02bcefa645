/**
 * After the hub's Redis connections drop and come back, every channel with subscribers re-reads
 * what pub/sub may have dropped. Those reads are paced (the hub's ConcurrencyLimit): a few hundred
 * channels must not send a few hundred history reads at once to a Redis that just came back, and
 * nothing may be lost or doubled on the way. The connections run through a TCP proxy, so the test
 * cuts only its own hub's connections on the shared Redis.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Broker, HistoryQuery } from '@herald/server';
import { publish, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { deleteRedisPrefix, REDIS_URL, testPrefix } from '../../../test/support/redis.ts';
import { requireService } from '../../../test/support/services.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';
import { createRedisBackend } from '../src/index.ts';

const CHANNELS = 300;
/** The hub's HISTORY_FILLS_IN_FLIGHT. */
const PACE = 32;

/** The real Redis broker, with its history reads counted (in flight now, most at once, total). */
function countingHistory(broker: Broker) {
  const counts = { inFlight: 0, most: 0, total: 0 };
  const history = broker.history.bind(broker);
  broker.history = async (channel: string, query: HistoryQuery) => {
    counts.inFlight++;
    counts.total++;
    counts.most = Math.max(counts.most, counts.inFlight);
    try {
      return await history(channel, query);
    } finally {
      counts.inFlight--;
    }
  };
  return counts;
}

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

test('a Redis reconnect re-reads every channel, paced, and loses nothing', { timeout: 60_000 }, async (t) => {
  if (!(await requireService(t, 'redis'))) return;
  const proxy = new TcpProxy(6379);
  await proxy.listen();
  cleanup.push(() => proxy.close());
  const prefix = testPrefix();
  cleanup.push(() => deleteRedisPrefix(REDIS_URL, prefix));
  const { broker, presence } = await createRedisBackend({
    url: `redis://127.0.0.1:${proxy.port}`,
    history: { size: 100, ttlSeconds: 600 },
    prefix,
  });
  const counts = countingHistory(broker);
  const hub: TestHub = await startHub({ broker, presence });
  cleanup.push(() => hub.close());

  const channels = Array.from({ length: CHANNELS }, (_, i) => `resync:${i}`);
  const jwt = await token();
  const clients: WsTestClient[] = [];
  for (let i = 0; i < channels.length; i += 100) {
    const client = await WsTestClient.connect(hub.wsUrl, jwt);
    cleanup.push(() => client.close());
    // Two rounds of 50: the hub closes a connection with more than 64 commands waiting (4005).
    for (let j = i; j < i + 100; j += 50) {
      await Promise.all(channels.slice(j, j + 50).map((channel) => client.ok('subscribe', { channel })));
    }
    clients.push(client);
  }
  const received = () => clients.flatMap((c) => c.publications());
  for (const channel of channels) await publish(hub, channel, 'before');
  await until(() => received().length === CHANNELS, 'the publications before the cut', 20_000);

  const readsBefore = counts.total;
  proxy.cutAll();
  await until(() => counts.total - readsBefore >= CHANNELS && counts.inFlight === 0, 'every channel re-read', 30_000);
  t.diagnostic(JSON.stringify({ channels: CHANNELS, rereads: counts.total - readsBefore, mostInFlight: counts.most }));
  assert.ok(counts.most <= PACE, `at most ${PACE} history reads in flight (saw ${counts.most})`);

  // Publish again once the hub is ready: every subscriber gets it, once, right after the first.
  for (let i = 0; (await fetch(`${hub.url}/readyz`)).status !== 200; i++) {
    assert.ok(i < 200, 'the hub is ready again');
    await sleep(100);
  }
  for (const channel of channels) await publish(hub, channel, 'after');
  await until(() => received().length === 2 * CHANNELS, 'the publications after the cut', 20_000);
  for (const channel of channels) {
    const pubs = received().filter((p) => p.channel === channel);
    assert.deepEqual(
      pubs.map((p) => [p.offset, p.data]),
      [
        [1, 'before'],
        [2, 'after'],
      ],
      channel,
    );
  }
});
