#!/usr/bin/env node
/**
 * The hub's CPU per delivery with two builds of `@herald/server` side by side in one process,
 * alternating round by round: a change to the delivery path measured without cross-run noise.
 *
 *   node scripts/compare-builds.mjs BASE_DIST [subscribers=1000] [publications a turn=40] [rounds=20]
 *
 * BASE_DIST is another build of packages/server, copied inside packages/server so that its imports
 * resolve (`dist-base/` is ignored by git), for example the last commit's:
 *
 *   git stash && npm run build && cp -r packages/server/dist packages/server/dist-base
 *   git stash pop && npm run build
 *   node scripts/compare-builds.mjs packages/server/dist-base 1000 40
 *
 * Each build runs a `HeraldServer` (memory broker, no keep-alive pings in the run) with
 * `subscribers` WebSocket clients in a child process of its own (the bench's frame reader). A
 * round publishes `publications a turn` through `hub.publish` in each of three event-loop turns
 * (the first write of a busy hub's turn is held too: the batching of a loaded hub, as under
 * `POST /api/publish` with many requests in flight) and waits for every client to read them all.
 * It prints each build's CPU per delivery (median over rounds) and their ratio. A best case for
 * both (no HTTP, a quiet loop); the user paths are `herald bench`'s.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setImmediate } from 'node:timers';
import { benchHubOptions, forkSubscribers, median, nextMessage } from './bench-subscribers.mjs';

const [baseDist, ...rest] = process.argv.slice(2);
if (baseDist === undefined) {
  console.error('usage: node scripts/compare-builds.mjs BASE_DIST [subscribers] [publications a turn] [rounds]');
  process.exit(2);
}
const [subscribers, perTurn, rounds] = [0, 1, 2].map((i) => Number(rest[i] ?? [1000, 40, 20][i]));
const TURNS = 3;

async function start(moduleUrl) {
  const { HeraldServer } = await import(moduleUrl);
  const server = new HeraldServer(benchHubOptions());
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, child: await forkSubscribers(port, subscribers, perTurn * TURNS), cpu: [] };
}

const builds = {
  base: await start(pathToFileURL(path.resolve(baseDist, 'index.js')).href),
  this: await start('@herald/server'),
};
const payload = { bt: 0, pad: 'x'.repeat(60) };
for (let round = 0; round < rounds; round++) {
  for (const name of round % 2 === 0 ? ['base', 'this'] : ['this', 'base']) {
    const build = builds[name];
    const received = nextMessage(build.child);
    const cpu = process.cpuUsage();
    for (let turn = 0; turn < TURNS; turn++) {
      for (let i = 0; i < perTurn; i++) void build.server.hub.publish({ channel: 'bench', data: payload });
      await new Promise((resolve) => setImmediate(resolve));
    }
    await received;
    const used = process.cpuUsage(cpu);
    build.cpu.push((used.user + used.system) / (subscribers * perTurn * TURNS));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
const [base, current] = [median(builds.base.cpu), median(builds.this.cpu)];
console.log(
  `${subscribers} subscribers, ${perTurn} publications a turn, ${rounds} rounds: CPU per delivery ` +
    `${baseDist} ${base.toFixed(3)} µs, this build ${current.toFixed(3)} µs, base/this ×${(base / current).toFixed(2)}`,
);
for (const build of Object.values(builds)) {
  build.child.kill();
  await build.server.close();
}
