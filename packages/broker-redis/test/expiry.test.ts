/**
 * Key expiry under the publish script (scripts.ts, EXPIRY_REFRESH_MS): a busy channel pushes its
 * keys' expiry back at most once a second, and still both keys outlive its last publication by
 * the full retention time; a channel that starts a new generation gets its expiry at once. And the
 * split of a turn's publications into two script runs (publish-batch.ts, `batchItems`).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { deleteRedisPrefix, REDIS_URL, testPrefix } from '../../../test/support/redis.ts';
import { requireService } from '../../../test/support/services.ts';
import { createRedisBackend, RedisKeys } from '../src/index.ts';
import { batchItems } from '../src/publish-batch.ts';

const TTL_S = 60;
const META_TTL_S = 3600;
const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

async function setup() {
  const prefix = testPrefix();
  const { broker, presence } = await createRedisBackend({
    url: REDIS_URL,
    prefix,
    history: { size: 100, ttlSeconds: TTL_S },
    streamMetaTtlSeconds: META_TTL_S,
  });
  await broker.start({ publication: () => undefined, control: () => undefined, readiness: () => undefined });
  const redis = new Redis(REDIS_URL);
  cleanup.push(async () => {
    redis.disconnect();
    await Promise.all([broker.close(), presence.close()]);
    await deleteRedisPrefix(REDIS_URL, prefix);
  });
  const keys = new RedisKeys(prefix);
  const publish = (channel: string, n: number) =>
    broker.publish({ channel, dataJson: String(n), ts: Date.now(), ephemeral: false });
  return { redis, keys, publish };
}

test('a busy channel refreshes its expiry once, and both keys outlive the last publication by the retention time', async (t) => {
  if (!(await requireService(t, 'redis'))) return;
  const { redis, keys, publish } = await setup();
  const channel = 'expiry:busy';
  await publish(channel, 1);
  const refreshedAt = Number(await redis.hget(keys.meta(channel), 'xp'));
  assert.ok(refreshedAt > 0, 'the first publication sets the expiry and notes when');
  // Many more right after: none of them pushes the expiry back again.
  await Promise.all(Array.from({ length: 50 }, (_, i) => publish(channel, i + 2)));
  const [xp, streamMs, metaMs, [seconds, micros]] = await Promise.all([
    redis.hget(keys.meta(channel), 'xp').then(Number),
    redis.pttl(keys.stream(channel)),
    redis.pttl(keys.meta(channel)),
    redis.time(),
  ]);
  // On Redis's clock; a machine so loaded that the 50 took a second would rightly refresh again.
  if (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - refreshedAt < 900) {
    assert.equal(xp, refreshedAt);
    // Until the next refresh (a second at most) the keys still live the full retention time.
    assert.ok(streamMs > TTL_S * 1000 && streamMs <= TTL_S * 1000 + 1000, `stream ttl ${streamMs} ms`);
    assert.ok(metaMs > META_TTL_S * 1000 && metaMs <= META_TTL_S * 1000 + 1000, `meta ttl ${metaMs} ms`);
  }
  // Whenever it is read, each key outlives the last publication by the retention time at least.
  assert.ok(streamMs > (TTL_S - 1) * 1000 && metaMs > (META_TTL_S - 1) * 1000, `ttls ${streamMs}, ${metaMs} ms`);
  // A second later the next publication pushes it back again.
  await new Promise((r) => setTimeout(r, 1100));
  await publish(channel, 100);
  assert.ok(Number(await redis.hget(keys.meta(channel), 'xp')) >= refreshedAt + 1000);
});

test('a channel that starts a new generation gets its expiry at once, whatever its meta said', async (t) => {
  if (!(await requireService(t, 'redis'))) return;
  const { redis, keys, publish } = await setup();
  const channel = 'expiry:generation';
  const first = (await publish(channel, 1)).record;
  // Another Redis wrote it last (a restart that lost writes): the script starts a new generation,
  // deleting the stream; the meta's recent refresh mark must not keep the new stream from expiring.
  await redis.hset(keys.meta(channel), 'run', 'another-redis', 'xp', String(Date.now() + 60_000));
  const next = (await publish(channel, 2)).record;
  assert.notEqual(next.epoch, first.epoch);
  assert.equal(next.offset, 1);
  const streamMs = await redis.pttl(keys.stream(channel));
  assert.ok(streamMs > 0, `the new stream expires (pttl ${streamMs})`);
});

test('a turn with many publications leaves in two script runs, a small turn in one', () => {
  assert.equal(batchItems(1), 256);
  assert.equal(batchItems(15), 256);
  assert.equal(batchItems(16), 8);
  assert.equal(batchItems(64), 32);
  assert.equal(batchItems(65), 33);
  assert.equal(batchItems(10_000), 256);
});
