/** The pipelined publish path (a batch script per event-loop turn) against the shared Redis, through a proxy. */
import { brokerPipeline } from '../../../test/support/broker-pipeline.ts';
import { deleteRedisPrefix, REDIS_URL } from '../../../test/support/redis.ts';
import { requireService } from '../../../test/support/services.ts';
import { createRedisBackend } from '../src/index.ts';

brokerPipeline({
  name: 'redis',
  port: 6379,
  available: (t) => requireService(t, 'redis'),
  create: (port, prefix, history, publishQueue) =>
    createRedisBackend({ url: `redis://127.0.0.1:${port}`, prefix, history, publishQueue }),
  cleanup: (prefix) => deleteRedisPrefix(REDIS_URL, prefix),
});
