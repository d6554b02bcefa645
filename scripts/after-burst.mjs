#!/usr/bin/env node
/**
 * What a lone publication costs right after a turn that batched (a burst) against right after a
 * lone one, in one process, alternating: the turn batching's idle rule (transports/turn-batch.ts,
 * `IDLE_AFTER_MS`) says both leave at once, one write per subscriber.
 *
 *   node scripts/after-burst.mjs [subscribers=10000] [rounds=16] [server module]
 *
 * A `HeraldServer` (memory broker, no keep-alive pings in the run) takes `subscribers` WebSocket
 * clients from two child processes (the bench's frame reader). Each round publishes, through
 * `hub.publish`, either two publications in one turn (the hub counts as busy) or one, waits
 * 300 ms, then publishes one more and measures the hub's CPU per delivery and the time until every
 * client read it. The third argument loads another build of the server (for example
 * `../packages/server/dist-base/index.js`, made as compare-builds.mjs says) to compare.
 * A best case (no HTTP, a quiet loop). Needs `npm run build` and `ulimit -n` above `subscribers` + 100.
 */
import { median, startBenchHub } from './bench-subscribers.mjs';

const subscribers = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 16);
const { server, children } = await startBenchHub(subscribers, process.argv[4]);
const payload = { bt: 0, pad: 'x'.repeat(60) };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once every child reported `count` more rounds (one per publication read by all its clients). */
const read = (count) =>
  Promise.all(
    children.map(
      (child) =>
        new Promise((resolve) => {
          let seen = 0;
          const onMessage = () => {
            if (++seen < count) return;
            child.off('message', onMessage);
            resolve();
          };
          child.on('message', onMessage);
        }),
    ),
  );

const results = { 'after a burst': [], 'after a lone one': [] };
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? ['after a lone one', 'after a burst'] : ['after a burst', 'after a lone one'];
  for (const mode of order) {
    const count = mode === 'after a burst' ? 2 : 1;
    const before = read(count);
    for (let i = 0; i < count; i++) void server.hub.publish({ channel: 'bench', data: payload });
    await before;
    await sleep(300);
    const received = read(1);
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    void server.hub.publish({ channel: 'bench', data: payload });
    await received;
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const used = process.cpuUsage(cpu);
    results[mode].push({ ms, cpuUs: (used.user + used.system) / subscribers });
    await sleep(100);
  }
}
console.log(`${subscribers} subscribers, medians of ${rounds} rounds`);
for (const [mode, rows] of Object.entries(results)) {
  const cpu = median(rows.map((r) => r.cpuUs)).toFixed(2);
  const ms = median(rows.map((r) => r.ms)).toFixed(1);
  console.log(`lone publication ${mode}: ${cpu} µs of hub CPU per delivery, every client read it in ${ms} ms`);
}
for (const child of children) child.kill();
await server.close();
