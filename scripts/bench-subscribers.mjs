/**
 * The hub and the subscribers of the in-process measurement scripts (lone-publication.mjs,
 * after-burst.mjs, compare-builds.mjs). The hub: `benchHubOptions()`. The subscribers: a child process that opens `count` WebSocket clients on Herald's `/ws`
 * with the bench's frame reader, subscribes each to `bench`, says `ready` when all are in, then
 * `round` each time every client has read `perRound` more bench publications (data with `"bt"`).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** A `HeraldServer` whose anonymous clients may read `bench`, with no keep-alive pings in a run. */
export function benchHubOptions() {
  return {
    apiKey: randomBytes(24).toString('base64url'),
    jwtSecret: randomBytes(32).toString('base64url'),
    anonymousChannels: ['bench*'],
    pingIntervalSeconds: 3600,
  };
}

/**
 * A bench hub from `serverModule` (another build: a path relative to this directory) listening on
 * 127.0.0.1, with `subscribers` clients split over two subscriber processes. `sockets`: the hub's
 * own sockets to them.
 */
export async function startBenchHub(subscribers, serverModule = '@herald/server') {
  const { HeraldServer } = await import(serverModule);
  const server = new HeraldServer(benchHubOptions());
  const sockets = [];
  server.httpServer.on('connection', (socket) => sockets.push(socket));
  const { port } = await server.listen(0, '127.0.0.1');
  const shares = [Math.ceil(subscribers / 2), Math.floor(subscribers / 2)];
  const children = await Promise.all(shares.map((share) => forkSubscribers(port, share, 1)));
  return { server, sockets, children };
}

/** The median of `values` (sorted in place). */
export function median(values) {
  return values.sort((a, b) => a - b)[values.length >> 1];
}

/** Forks this module as a subscriber process; resolves once its clients are subscribed. */
export async function forkSubscribers(port, count, perRound) {
  const child = fork(new URL(import.meta.url), [String(port), String(count), String(perRound)]);
  await nextMessage(child);
  return child;
}

/** The child's next message (`ready`, `round`). */
export function nextMessage(child) {
  return new Promise((resolve) => child.once('message', resolve));
}

async function subscribers(port, count, perRound) {
  const { FrameSocket } = await import('../apps/bench/dist/frame-socket.js');
  let open = 0;
  let received = 0;
  await new Promise((resolve) => {
    for (let i = 0; i < count; i++) {
      const ws = new FrameSocket(`ws://127.0.0.1:${port}/ws`, {
        open: (socket) =>
          socket.send(
            '{"id":1,"method":"connect","params":{}}',
            '{"id":2,"method":"subscribe","params":{"channel":"bench"}}',
          ),
        message(data, start, end) {
          const text = data.toString('latin1', start, end);
          if (text.includes('"id":2')) {
            if (++open === count) resolve();
          } else if (text.includes('"bt"') && ++received === count * perRound) {
            received = 0;
            process.send('round');
          }
        },
        gone: (reason) => {
          process.stderr.write(`client gone: ${reason}\n`);
          process.exit(1);
        },
      });
      void ws;
    }
  });
  process.send('ready');
}

if (process.send !== undefined && process.argv[1] === new URL(import.meta.url).pathname) {
  await subscribers(...process.argv.slice(2, 5).map(Number));
}
