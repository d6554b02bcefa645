#!/usr/bin/env node
// How long the hub's keep-alive pings stall its event loop: `herald serve` with CONNECTIONS idle
// WebSocket clients (scripts/connection-capacity.mjs, two processes on 127.0.0.2 and .3), pinged
// every PING seconds; prints the event loop's longest delay in each of SCRAPES windows of 5 s, read
// off `herald_nodejs_eventloop_lag_max_seconds` (prom-client resets it at each scrape).
// docs/benchmarks.md quotes it. Bounded: the clients hold for a fixed time, the hub is killed.
// Usage: node scripts/ping-stall.mjs [PING=25] [CONNECTIONS=10000] [SCRAPES=6]
import { spawn, execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
// The bench's reader of a process tree's CPU time (built by `npm run build`, as the hub is).
import { treeCpuUs } from '../apps/bench/dist/proc-tree.js';

const [ping = 25, connections = 10_000, scrapes = 6] = process.argv.slice(2).map(Number);
const PORT = 9111;
const env = {
  ...process.env,
  PORT: String(PORT),
  HOST: '127.0.0.1',
  HERALD_API_KEY: 'ping-stall-api-key-0123456789',
  HERALD_JWT_SECRET: 'ping-stall-jwt-secret-0123456789abcdef0123456789',
  HERALD_LOG_LEVEL: 'error',
  HERALD_PING_INTERVAL: String(ping),
};
const cli = 'apps/herald/bin/herald.js';
const metrics = () => fetch(`http://127.0.0.1:${PORT}/metrics`).then((r) => r.text());
const read = (text, name) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1]);

const hub = spawn(process.execPath, [cli, 'serve'], { env, stdio: 'ignore' });
const clients = [];
try {
  for (let i = 0; ; i++) {
    if (i > 100) throw new Error('the hub did not start');
    if (
      await metrics().then(
        () => true,
        () => false,
      )
    )
      break;
    await sleep(100);
  }
  const token = execFileSync(process.execPath, [cli, 'token', '--sub', 'ping-stall', '--ttl', '0'], { env })
    .toString()
    .trim();
  const hold = String(25 + 5 * scrapes);
  for (const address of ['127.0.0.2', '127.0.0.3']) {
    const args = ['scripts/connection-capacity.mjs', `ws://127.0.0.1:${PORT}/ws`, token, String(connections / 2)];
    clients.push(spawn(process.execPath, [...args, address, hold], { stdio: 'ignore' }));
  }
  await sleep(20_000);
  await metrics(); // starts the first window
  const cpuBefore = treeCpuUs(hub.pid);
  const windows = [];
  for (let i = 0; i < scrapes; i++) {
    await sleep(5_000);
    windows.push(`${Math.round(read(await metrics(), 'herald_nodejs_eventloop_lag_max_seconds') * 1000)} ms`);
  }
  const cpuMs = (treeCpuUs(hub.pid) - cpuBefore) / 1000;
  const open = read(await metrics(), 'herald_connections\\{transport="websocket"\\}');
  console.log(`${open} connections, pings every ${ping} s; longest event-loop delay per 5 s: ${windows.join(', ')}`);
  console.log(`hub CPU over those ${5 * scrapes} s: ${Math.round(cpuMs)} ms`);
} finally {
  for (const child of clients) child.kill();
  hub.kill();
}
