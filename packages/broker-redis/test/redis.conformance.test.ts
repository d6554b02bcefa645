/**
 * The broker conformance suite against Redis (127.0.0.1:6379, shared with other tests): every case
 * runs two nodes under a key prefix of its own and deletes that prefix afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { brokerConformance } from '../../../test/support/broker-conformance.ts';
import { requireService } from '../../../test/support/services.ts';
import { createRedisBackend } from '../src/index.ts';

const URL = 'redis://127.0.0.1:6379';

brokerConformance({
  name: 'redis',
  multiNode: true,
  available: (t) => requireService(t, 'redis'),
  async create(history, count) {
    const prefix = `herald-test-${randomBytes(6).toString('hex')}`;
    const nodes = [];
    for (let i = 0; i < count; i++) nodes.push(await createRedisBackend({ url: URL, history, prefix }));
    return { nodes, cleanup: () => deletePrefix(prefix) };
  },
});

async function deletePrefix(prefix: string): Promise<void> {
  const redis = new Redis(URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
