#!/usr/bin/env node
// Server CPU per delivery of `herald serve` with one process against `--workers N`, the same
// workload on both (docs/scale-out.md, "Every core"): SUBSCRIBERS WebSocket clients of one channel
// spread over the workers by the kernel, then ROUNDS bursts of BURST publications through
// POST /api/publish (IN_FLIGHT requests in flight). CPU is the hub's whole process tree (primary and workers, from
// /proc), from the first publish to the last delivery counted. Bounded: every wait has a deadline.
// Usage: node scripts/workers-cpu.mjs [SUBSCRIBERS=4000] [BURST=200] [ROUNDS=3] [WORKERS=2] [IN_FLIGHT=16]
// With WORKERS_CPU_COUNT_WRITES=1 every hub process prints its socket writes when it stops
// (scripts/count-writes.mjs).
// Its subscribers are `ws` clients in this one process, which shares the cores with the hub: for
// the figures users should read, the bench runs the same A/B on the user path with separate load
// generators (`npx herald bench --scenarios user --user-targets herald-ws-serve,herald-ws-workers`).
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
// The bench's reader of a process tree's CPU time (built by `npm run build`, as the hub is).
import { treeCpuUs } from '../apps/bench/dist/proc-tree.js';

const [subscribers = 4000, burst = 200, rounds = 3, workers = 2, inFlight = 16] = process.argv.slice(2).map(Number);
const API_KEY = 'workers-cpu-api-key-0123456789';
const CHANNEL = 'bench:workers';

async function measure(workerCount, port) {
  const count = process.env.WORKERS_CPU_COUNT_WRITES === '1' ? ['--import=./scripts/count-writes.mjs'] : [];
  const args = [
    ...count,
    'apps/herald/bin/herald.js',
    'serve',
    ...(workerCount > 1 ? ['--workers', String(workerCount)] : []),
  ];
  const hub = spawn(process.execPath, args, {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      HERALD_API_KEY: API_KEY,
      HERALD_JWT_SECRET: 'workers-cpu-jwt-secret-0123456789abcdef012345',
      HERALD_ANONYMOUS_CHANNELS: 'bench:*',
      HERALD_LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (let i = 0; ; i++) {
      if (i > 100) throw new Error('the hub did not start');
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      await sleep(100);
    }
    if (workerCount > 1) await sleep(1000); // every worker listening
    let received = 0;
    /** The round's deliveries, and when the last of them arrived. */
    let expected = Number.POSITIVE_INFINITY;
    let doneAt = 0;
    const sockets = [];
    for (let i = 0; i < subscribers; i += 200) {
      await Promise.all(
        Array.from(
          { length: Math.min(200, subscribers - i) },
          () =>
            new Promise((resolve, reject) => {
              const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
              sockets.push(ws);
              ws.on('error', reject);
              ws.on('open', () => {
                ws.send('{"id":1,"method":"connect","params":{}}');
                ws.send(`{"id":2,"method":"subscribe","params":{"channel":"${CHANNEL}"}}`);
              });
              ws.on('message', (data) => {
                if (data[2] === 0x70 /* {"push" */ && ++received === expected) doneAt = performance.now();
                else if (String(data).startsWith('{"id":2,')) resolve();
              });
            }),
        ),
      );
    }
    const figures = [];
    const rates = [];
    for (let r = 0; r < rounds; r++) {
      received = 0;
      expected = burst * subscribers;
      const cpu0 = treeCpuUs(hub.pid) / 1e6;
      const start = performance.now();
      let next = 0;
      const body = JSON.stringify({ channel: CHANNEL, data: { pad: 'x'.repeat(60) } });
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < burst) {
            next++;
            const res = await fetch(`http://127.0.0.1:${port}/api/publish`, {
              method: 'POST',
              headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
              body,
            });
            if (!res.ok) throw new Error(`publish answered ${res.status}`);
            await res.arrayBuffer();
          }
        }),
      );
      const deadline = Date.now() + 60_000;
      while (received < expected && Date.now() < deadline) await sleep(20);
      const cpu = treeCpuUs(hub.pid) / 1e6 - cpu0;
      if (received < expected) throw new Error(`only ${received} of ${expected} deliveries`);
      figures.push((cpu * 1e6) / expected);
      rates.push(expected / ((doneAt - start) / 1000));
      await sleep(500);
    }
    for (const ws of sockets) ws.terminate();
    return { figures, rates };
  } finally {
    hub.kill('SIGTERM');
    await new Promise((resolve) => hub.once('exit', resolve));
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const one = await measure(1, 9411);
const many = await measure(workers, 9412);
const fmt = (xs) => `${median(xs).toFixed(2)} µs [${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}]`;
// Deliveries per second from the first publish to the last delivery: what the CPU bought.
const rate = (xs) => `${Math.round(median(xs)).toLocaleString('en-US')} deliveries/s`;
console.log(
  `${subscribers} subscribers, bursts of ${burst} via POST /api/publish (${inFlight} in flight), ${rounds} rounds`,
);
console.log(`one process:   server CPU per delivery ${fmt(one.figures)}, ${rate(one.rates)}`);
console.log(
  `--workers ${workers}:  server CPU per delivery ${fmt(many.figures)}  (×${(median(many.figures) / median(one.figures)).toFixed(2)}), ` +
    `${rate(many.rates)} (×${(median(many.rates) / median(one.rates)).toFixed(2)})`,
);
