/**
 * Herald under test, started through its public API (`HeraldServer` from `@herald/server`) with
 * the in-memory broker and the bench channel open to anonymous clients. Publications go through
 * `hub.publish`, the same path as `POST /api/publish` after its HTTP parsing.
 * With `--socketio`, the Socket.IO plugin is attached when it exists (see socketio-plugin.ts).
 */
import { randomBytes } from 'node:crypto';
import { HeraldServer } from '@herald/server';
import { serveControl } from './server-control.js';
import { attachSocketIoPlugin } from './socketio-plugin.js';
import { BENCH_CHANNEL } from './targets.js';

const server = new HeraldServer({
  apiKey: randomBytes(24).toString('base64url'),
  jwtSecret: randomBytes(32).toString('base64url'),
  anonymousChannels: ['bench*'],
});
if (process.argv.includes('--socketio') && !(await attachSocketIoPlugin(server))) {
  throw new Error('the Socket.IO plugin is not available');
}
const address = await server.listen(0, '127.0.0.1');
let failures = 0;
serveControl({
  port: address.port,
  connections() {
    const c = server.hub.stats.connections;
    return c.websocket + c.sse + c.poll + c.socketio;
  },
  broadcast(payload) {
    server.hub.publish({ channel: BENCH_CHANNEL, data: payload }).catch(() => failures++);
  },
});
process.on('exit', () => {
  if (failures > 0) process.stderr.write(`herald bench server: ${failures} publications failed\n`);
});
