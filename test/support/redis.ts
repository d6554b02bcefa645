/** Test support for the shared Redis (127.0.0.1:6379): tests work under a key prefix of their own. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = 'redis://127.0.0.1:6379';

/** A key prefix no other test uses. */
export function testPrefix(): string {
  return `herald-test-${randomBytes(6).toString('hex')}`;
}

/** Deletes every key under `prefix` (a test's own), leaving the rest of the shared Redis alone. */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true });
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
