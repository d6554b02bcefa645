/**
 * Reconnect storm: thousands of WebSocket clients, spread over several load processes and 20
 * source addresses (127.0.0.100-119), are connected and subscribed with a stream position when
 * the hub is killed (SIGKILL) and started again on the same port. They all come back at once;
 * the hub admits them under its connection-rate limit (429 + Retry-After, clients back off with
 * jitter), stays up, and every client ends subscribed again with an answer about its position
 * (with the memory broker a restart loses the streams: `recovered: false` is the right answer).
 *
 * CI runs 2,000 clients; HERALD_FULL=1 runs 10,000 (HERALD_STORM_CLIENTS overrides either).
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { API_KEY, token, until } from '../support/hub.ts';
import { startChildHub, MiB, type ChildHub, type ChildHubConfig } from './support/child-hub.ts';
import { FULL, envInt, pool, recordFigures } from './support/figures.ts';
import type { StormConfig, StormCounters } from './support/storm-worker.ts';

const CLIENTS = envInt('HERALD_STORM_CLIENTS', FULL ? 10_000 : 2_000);
const WORKERS = Math.max(2, Math.ceil(CLIENTS / 2_500));
const CHANNELS = 100;
/** The hub-wide rate: below what the returning clients offer (clients / 5 s backoff cap), so the storm is paced. */
const RATE = FULL ? { perSecond: 1_000, burst: 1_000 } : { perSecond: 200, burst: 200 };
/** Peak RSS bound for the restarted hub while it takes the storm. */
const RSS_BOUND = (FULL ? 1_024 : 400) * MiB;
const WORKER = fileURLToPath(new URL('./support/storm-worker.ts', import.meta.url));

const HUB: ChildHubConfig = {
  options: {
    historySize: 100,
    maxConnectionsPerIp: 5_000,
    connectionRatePerIp: { perSecond: 500, burst: 500 },
    connectionRate: RATE,
  },
};

interface Worker {
  readonly child: ChildProcess;
  counters(): Promise<StormCounters>;
}

function startWorker(config: StormConfig): Promise<Worker> {
  const child = fork(WORKER, [], {
    execArgv: ['--conditions=herald-source', '--import', 'tsx'],
    env: { ...process.env, NODE_OPTIONS: '', HERALD_STORM: JSON.stringify(config) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let waiting: ((c: StormCounters) => void) | undefined;
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`storm worker exited (${code})`)));
    child.on('message', (m: any) => {
      if (m.type === 'started') {
        resolve({
          child,
          counters: () =>
            new Promise((r) => {
              waiting = r;
              child.send({ type: 'counters' });
            }),
        });
      } else if (m.type === 'counters') waiting?.(m.counters);
    });
  });
}

async function total(workers: readonly Worker[]): Promise<StormCounters> {
  const all = await Promise.all(workers.map((w) => w.counters()));
  const sum = {} as StormCounters;
  for (const c of all) {
    for (const [k, v] of Object.entries(c) as Array<[keyof StormCounters, number]>) {
      sum[k] = k === 'resumeMsMax' ? Math.max(sum[k] ?? 0, v) : (sum[k] ?? 0) + v;
    }
  }
  return sum;
}

describe('reconnect storm', () => {
  const workers: Worker[] = [];
  const hubs: ChildHub[] = [];
  after(async () => {
    for (const w of workers) {
      w.child.send({ type: 'stop' });
      setTimeout(() => w.child.kill('SIGKILL'), 3_000).unref();
    }
    await Promise.all(hubs.map((h) => h.kill()));
  });

  it(
    `${CLIENTS} clients come back after a hub restart: admitted under the rate limit, all resubscribed and answered`,
    { timeout: 600_000 },
    async (t) => {
      const first = await startChildHub(HUB);
      hubs.push(first);
      const jwt = await token({ sub: 'storm', channels: ['storm:*'] });
      const per = Math.ceil(CLIENTS / WORKERS);
      for (let w = 0; w < WORKERS; w++) {
        const clients = Math.min(per, CLIENTS - w * per);
        workers.push(
          await startWorker({
            url: first.wsUrl,
            token: jwt,
            clients,
            firstClient: w * per,
            channels: CHANNELS,
            addressBase: 100,
            addresses: 20,
          }),
        );
      }
      const connectStarted = Date.now();
      let counters = await total(workers);
      const poller = setInterval(() => void total(workers).then((c) => (counters = c)), 250);
      try {
        await until(
          () => counters.subscribed >= CLIENTS,
          `${CLIENTS} first subscriptions (have ${counters.subscribed})`,
          300_000,
        );
        const initialConnectMs = Date.now() - connectStarted;
        const before = { ...counters };
        // Give every channel a position, so that every client resumes from a real offset.
        await pool(
          Array.from({ length: CHANNELS }, (_, i) => i),
          8,
          async (i) => {
            const r = await fetch(`${first.url}/api/publish`, {
              method: 'POST',
              headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
              body: JSON.stringify({ channel: `storm:${i}`, data: { before: 'restart' } }),
            });
            assert.equal(r.status, 200);
          },
        );
        await new Promise((r) => setTimeout(r, 500));

        // The crash: every socket dies at once. Then the same port again.
        const killedAt = Date.now();
        await first.kill();
        const second = await startChildHub({ ...HUB, port: first.port });
        hubs.push(second);
        const restartMs = Date.now() - killedAt;
        let peak = 0;
        const sampler = setInterval(() => {
          if (second.exitStatus === undefined) peak = Math.max(peak, second.rss().rss);
        }, 100);
        await until(
          () => counters.resumed >= CLIENTS,
          `every client to resume (have ${counters.resumed} of ${CLIENTS})`,
          300_000,
        ).catch(() => undefined);
        clearInterval(sampler);
        const allBackMs = Date.now() - killedAt;
        counters = await total(workers);
        const hubStats = await second.stats();
        const figures = {
          clients: CLIENTS,
          workers: WORKERS,
          sourceAddresses: 20,
          rateLimit: `${RATE.perSecond}/s burst ${RATE.burst} (hub), 500/s per address`,
          initialConnectMs,
          restartMs,
          allResumedAfterKillMs: allBackMs,
          resumeMsMax: counters.resumeMsMax,
          resumeMsMean: Math.round(counters.resumeMsSum / Math.max(1, counters.resumed)),
          resumed: counters.resumed,
          recoveredFalse: counters.recoveredFalse,
          recoveredTrue: counters.recoveredTrue,
          refused429: counters.refused429 - before.refused429,
          refusedOther: counters.refusedOther,
          connectAttemptsAfterKill: counters.attempts - before.attempts,
          hubConnections: hubStats.connections.websocket,
          peakRssMiB: Math.round(peak / MiB),
        };
        recordFigures(t, FULL ? 'reconnect-storm-full' : 'reconnect-storm', figures);
        assert.equal(second.exitStatus, undefined, `the hub exited: ${second.stderr()}`);
        assert.equal(counters.resumed, CLIENTS, 'every client got an answer about its position');
        assert.equal(counters.recoveredFalse, CLIENTS, 'memory broker restarted: recovered false for all');
        assert.equal(hubStats.connections.websocket, CLIENTS, 'every client is connected to the new hub');
        assert.ok(figures.refused429 > 0, 'the storm was paced by the connection-rate limit');
        assert.equal(counters.refusedOther, 0, 'no refusal other than 429');
        assert.ok(peak < RSS_BOUND, `peak RSS ${figures.peakRssMiB} MiB over ${RSS_BOUND / MiB}`);
      } finally {
        clearInterval(poller);
      }
    },
  );
});
