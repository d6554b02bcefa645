/**
 * The broker conformance suite against Redis (127.0.0.1:6379, shared with other tests): every case
 * runs two nodes under a key prefix of its own and deletes that prefix afterwards.
 */
import { brokerConformance } from '../../../test/support/broker-conformance.ts';
import { deleteRedisPrefix, REDIS_URL, testPrefix } from '../../../test/support/redis.ts';
import { requireService } from '../../../test/support/services.ts';
import { createRedisBackend } from '../src/index.ts';

brokerConformance({
  name: 'redis',
  multiNode: true,
  available: (t) => requireService(t, 'redis'),
  async create(history, count) {
    const prefix = testPrefix();
    const nodes = [];
    for (let i = 0; i < count; i++) nodes.push(await createRedisBackend({ url: REDIS_URL, history, prefix }));
    return { nodes, cleanup: () => deleteRedisPrefix(REDIS_URL, prefix) };
  },
});
