/**
 * Herald under test, started through its public API (`HeraldServer` from `@herald/server`) with
 * the in-memory broker and the bench channel open to anonymous clients. Publications go through
 * `hub.publish`, the same path as `POST /api/publish` after its HTTP parsing; a separate
 * publisher process uses `POST /api/publish` itself with the API key this process reports.
 * With `--socketio`, the Socket.IO plugin is attached when it exists (see socketio-plugin.ts).
 * With `--redis PREFIX`, the broker is Redis (HERALD_BENCH_REDIS, default 127.0.0.1:6379) under
 * that key prefix, so two such processes are two nodes of one deployment.
 */
import { randomBytes } from 'node:crypto';
import { createRedisBackend } from '@herald/broker-redis';
import { HeraldServer } from '@herald/server';
import { REDIS_URL } from './bench-redis.js';
import { serveControl } from './server-control.js';
import { attachSocketIoPlugin } from './socketio-plugin.js';
import { BENCH_CHANNEL } from './targets.js';

const apiKey = randomBytes(24).toString('base64url');
const redisAt = process.argv.indexOf('--redis');
const redisPrefix = redisAt < 0 ? undefined : process.argv[redisAt + 1];
const shared =
  redisPrefix === undefined
    ? undefined
    : await createRedisBackend({ url: REDIS_URL, prefix: redisPrefix, history: { size: 1000, ttlSeconds: 600 } });

const server = new HeraldServer({
  apiKey,
  jwtSecret: randomBytes(32).toString('base64url'),
  anonymousChannels: ['bench*'],
  ...(shared === undefined ? {} : { broker: shared.broker, presence: shared.presence }),
});
if (process.argv.includes('--socketio') && !(await attachSocketIoPlugin(server))) {
  throw new Error('the Socket.IO plugin is not available');
}
const address = await server.listen(0, '127.0.0.1');
let failures = 0;
serveControl({
  port: address.port,
  publishPath: '/api/publish',
  apiKey,
  connections() {
    return Object.values(server.hub.stats.connections).reduce((sum, n) => sum + n, 0);
  },
  broadcast(payload) {
    server.hub.publish({ channel: BENCH_CHANNEL, data: payload }).catch(() => failures++);
  },
});
process.on('exit', () => {
  if (failures > 0) process.stderr.write(`herald bench server: ${failures} publications failed\n`);
});
