/**
 * The scenarios of broker-bench, each through public APIs only (`hub.publish`, the HTTP server
 * API, a WebSocket client). Publications carry ~120 bytes of JSON.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HeraldError } from '@herald/protocol';
import type { HeraldServer } from '@herald/server';
import WebSocket from 'ws';
import type { HttpLoadInput, HttpLoadResult, HttpMode } from './http-load.js';

const DATA = { payload: 'x'.repeat(100) };

export interface Throughput {
  readonly published: number;
  readonly perSecond: number;
  /** Publishes refused (rate_limited / broker_unavailable) or failed. */
  readonly refused: number;
  /** This process's CPU time (every thread: JavaScript, GC, I/O) per acknowledged publication, µs. */
  readonly cpuUsPerPublication: number;
}

export interface Latencies {
  /** Milliseconds, sorted. */
  readonly samples: readonly number[];
  readonly refused: number;
}

/**
 * Acknowledged publications per second through one node: `inFlight` publishers, each publishing
 * its next publication once the previous one is acknowledged, over `channels` channels. A warm-up
 * of `warmupMs` runs first and is not counted.
 */
export async function throughput(
  server: HeraldServer,
  channels: readonly string[],
  options: { inFlight: number; seconds: number; max: number; warmupMs: number; stop?: () => boolean },
): Promise<Throughput> {
  const run = async (ms: number, max: number): Promise<Throughput> => {
    const start = performance.now();
    const cpu = process.cpuUsage();
    const deadline = start + ms;
    let issued = 0;
    let done = 0;
    let refused = 0;
    await Promise.all(
      Array.from({ length: options.inFlight }, async (_, lane) => {
        const channel = channels[lane % channels.length] as string;
        while (issued < max && performance.now() < deadline && options.stop?.() !== true) {
          issued++;
          try {
            await server.hub.publish({ channel, data: DATA });
            done++;
          } catch (error) {
            if (!(error instanceof HeraldError)) throw error;
            refused++;
            // A refusal says: come back later. Publishing again at once would only spin.
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      }),
    );
    const used = process.cpuUsage(cpu);
    return {
      published: done,
      perSecond: done / ((performance.now() - start) / 1000),
      refused,
      cpuUsPerPublication: (used.user + used.system) / done,
    };
  };
  if (options.warmupMs > 0) await run(options.warmupMs, Number.POSITIVE_INFINITY);
  return run(options.seconds * 1000, options.max);
}

/**
 * One channel published at a steady `rate`, open loop (the schedule does not wait for acks, as
 * independent publishers would not): the time from `hub.publish` to its acknowledgement. With
 * `keyed`, every publication carries an idempotency key, as the SDK's publishes do.
 */
export async function hotChannel(
  server: HeraldServer,
  channel: string,
  options: { rate: number; seconds: number; keyed: boolean },
): Promise<Latencies> {
  const samples: number[] = [];
  let refused = 0;
  const pending: Promise<void>[] = [];
  const interval = 1000 / options.rate;
  const start = performance.now();
  const count = Math.round(options.rate * options.seconds);
  const prefix = randomBytes(4).toString('hex');
  for (let i = 0; i < count; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    const input = options.keyed ? { channel, data: DATA, idempotencyKey: `${prefix}-${i}` } : { channel, data: DATA };
    pending.push(
      server.hub.publish(input).then(
        () => void samples.push(performance.now() - sent),
        () => void refused++,
      ),
    );
  }
  await Promise.all(pending);
  return { samples: samples.sort((a, b) => a - b), refused };
}

/** Publish on `from`, receive over WebSocket from `to`: ms from `hub.publish` to the parsed frame. */
export async function deliveryLatency(
  from: HeraldServer,
  to: HeraldServer,
  channel: string,
  options: { rate: number; count: number; seconds: number },
): Promise<Latencies> {
  const port = (to.httpServer.address() as { port: number }).port;
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const samples: number[] = [];
  const replies = new Map<number, () => void>();
  socket.on('message', (raw) => {
    const message = JSON.parse(raw.toString());
    if (typeof message.id === 'number') replies.get(message.id)?.();
    else if (message.push === 'pub') samples.push(performance.now() - message.pub.data.t);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const call = (id: number, method: string, params: object): Promise<void> =>
    new Promise((resolve) => {
      replies.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await call(1, 'connect', {});
  await call(2, 'subscribe', { channel });
  const interval = 1000 / options.rate;
  const deadline = performance.now() + options.seconds * 1000;
  const pending: Promise<unknown>[] = [];
  let refused = 0;
  for (let i = 0; i < options.count && performance.now() < deadline; i++) {
    const due = performance.now() + interval;
    pending.push(from.hub.publish({ channel, data: { t: performance.now() } }).catch(() => void refused++));
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(pending);
  const expected = pending.length - refused;
  const until = performance.now() + 5_000;
  while (samples.length < expected && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  socket.close();
  return { samples: samples.sort((a, b) => a - b), refused };
}

/** The server API driven from a child process (http-load.ts). */
export function httpLoad(
  server: HeraldServer,
  apiKey: string,
  mode: HttpMode,
  channels: readonly string[],
  options: { inFlight: number; batchSize: number; seconds: number },
): Promise<HttpLoadResult> {
  const input: HttpLoadInput = {
    port: (server.httpServer.address() as { port: number }).port,
    apiKey,
    mode,
    channels,
    ...options,
  };
  const file = new URL(import.meta.url.endsWith('.ts') ? './http-load.ts' : './http-load.js', import.meta.url);
  return new Promise((resolve, reject) => {
    // The child runs the way this process does (from source under tsx, or from dist).
    const child = fork(fileURLToPath(file), [], { stdio: 'inherit' });
    child.once('message', (message: { ok: boolean; result?: HttpLoadResult; error?: string }) => {
      if (message.ok && message.result !== undefined) resolve(message.result);
      else reject(new Error(message.error ?? 'http load failed'));
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`http load process exited with ${code}`));
    });
    child.send(input);
  });
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}
