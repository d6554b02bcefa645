/**
 * The Redis the bench's multi-node targets share (HERALD_BENCH_REDIS, default 127.0.0.1:6379):
 * every run writes under a prefix of its own and deletes it afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.HERALD_BENCH_REDIS ?? 'redis://127.0.0.1:6379';

/** A key prefix no other run uses. */
export function benchPrefix(): string {
  return `herald_bench_${randomBytes(4).toString('hex')}`;
}

/** Removes every key the nodes of one run wrote under `prefix`. */
export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
