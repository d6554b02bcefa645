#!/usr/bin/env node
// The live dashboard's backend: once a second it reads the hub's own Prometheus metrics and
// publishes one sample (CPU, memory, connections, throughput) to `dashboard:hub` through the HTTP
// API, with @herald/server-client. Any service can feed a dashboard this way: compute, publish,
// and every open page updates.
//
//   HERALD_API_KEY=... node examples/live-dashboard/publish-metrics.mjs
//
// HERALD_URL defaults to http://127.0.0.1:8080; CHANNEL to dashboard:hub; INTERVAL_MS to 1000.
import { HeraldServerClient } from '@herald/server-client';

const base = (process.env.HERALD_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const apiKey = process.env.HERALD_API_KEY;
const channel = process.env.CHANNEL ?? 'dashboard:hub';
const intervalMs = Number(process.env.INTERVAL_MS ?? 1000);
const TRANSPORTS = ['websocket', 'sse', 'poll', 'socketio'];

if (!apiKey) {
  console.error('HERALD_API_KEY is not set (the hub prints it at start).');
  process.exit(2);
}

/** Prometheus text -> Map of "name{labels}" (or "name") -> value. */
function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

async function scrape() {
  const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  const m = parseMetrics(await response.text());
  const byTransport = (name) => Object.fromEntries(TRANSPORTS.map((t) => [t, m.get(`${name}{transport="${t}"}`) ?? 0]));
  const deliveries = byTransport('herald_deliveries_total');
  return {
    at: Date.now(),
    cpuSeconds: m.get('herald_process_cpu_seconds_total') ?? 0,
    rssBytes: m.get('herald_process_resident_memory_bytes') ?? 0,
    heapBytes: m.get('herald_nodejs_heap_size_used_bytes') ?? 0,
    loopLagSeconds: m.get('herald_nodejs_eventloop_lag_p99_seconds') ?? 0,
    connections: byTransport('herald_connections'),
    publications: m.get('herald_publications_total') ?? 0,
    deliveries: TRANSPORTS.reduce((sum, t) => sum + deliveries[t], 0),
  };
}

// A sample is worth its second only: no retries, the next tick publishes a fresh one.
const herald = new HeraldServerClient({ url: base, apiKey, timeoutMs: 5000, retry: { attempts: 1 } });

async function publish(data) {
  await herald.publish({ channel, event: 'sample', data });
}

let previous;
let published = 0;
let failing = false;

async function tick() {
  try {
    const now = await scrape();
    if (previous !== undefined) {
      const seconds = Math.max(0.001, (now.at - previous.at) / 1000);
      const rate = (a, b) => Math.max(0, a - b) / seconds;
      await publish({
        cpuPercent: round(rate(now.cpuSeconds, previous.cpuSeconds) * 100, 1),
        rssMb: round(now.rssBytes / 1048576, 1),
        heapMb: round(now.heapBytes / 1048576, 1),
        loopLagMs: round(now.loopLagSeconds * 1000, 1),
        connections: now.connections,
        // Our own sample of last second is one of the publications: leave it out.
        publicationsPerSecond: round(
          Math.max(0, rate(now.publications, previous.publications) - published / seconds),
          1,
        ),
        deliveriesPerSecond: round(rate(now.deliveries, previous.deliveries), 1),
      });
      published = 1;
    }
    previous = now;
    if (failing) console.error('hub reachable again');
    failing = false;
  } catch (error) {
    const what = error.code === undefined ? error.message : `${error.code}: ${error.message}`;
    if (!failing) console.error(`cannot sample or publish (${what}); retrying every second`);
    failing = true;
    previous = undefined;
    published = 0;
  }
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

console.log(`publishing ${base} metrics to ${channel} every ${intervalMs} ms (Ctrl-C to stop)`);
await tick();
setInterval(tick, intervalMs);
