/**
 * `herald serve --workers N`: N hub processes on one port (node:cluster), so one machine uses
 * every core and holds N times the connections one process's open-file limit allows.
 *
 * The primary serves no client. It forks the workers, owns the broker state when the broker is
 * the embedded one (a `LocalBrokerHost` on a unix socket: history, offsets, idempotency, presence
 * and revocations exist once for the machine, so every guarantee holds across workers as it does
 * across Redis nodes), counts the admission limits for all of them (shared-admission.ts), sums the
 * workers' metrics for `/metrics`, prints the banner once every
 * worker listens, and on SIGTERM or SIGINT has every worker drain, then exits 0 when all did.
 * With Redis or NATS each worker is simply one more node on that broker.
 *
 * Messages between primary and workers (IPC) carry `herald` as their kind; prom-client's own
 * messages share the channel.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBrokerHost } from '@herald/broker-local';
import type { AdmissionOptions, HistoryLimits } from '@herald/server';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { AdmissionHost } from './shared-admission.js';

/** Set in a worker's environment: the unix socket of the primary's local broker. */
export const LOCAL_BROKER_ENV = 'HERALD_LOCAL_BROKER';
/** How long a worker may take to listen before the start is given up. */
const START_TIMEOUT_MS = 60_000;
/** A worker that dies unasked is replaced after this pause (so a crash loop does not spin). */
const RESTART_DELAY_MS = 1_000;
/** Never hang: a drain that cannot finish still ends every process. */
export const DRAIN_DEADLINE_MS = 30_000;
/**
 * The least time a draining node keeps answering `/readyz` 503 before its listener closes: a
 * node whose clients left in a few ms would otherwise vanish before a load balancer's probe saw it.
 */
export const DRAIN_READINESS_MS = 1_000;

type WorkerMessage =
  | { readonly herald: 'listening'; readonly address: string; readonly port: number }
  | { readonly herald: 'metrics'; readonly id: number };

export interface Listening {
  readonly address: string;
  readonly port: number;
}

export interface PrimaryOptions {
  readonly count: number;
  /** The embedded broker's history limits; undefined when the broker is Redis or NATS. */
  readonly localHistory: HistoryLimits | undefined;
  /** Settings every worker must share (generated secrets, host, demo), as environment variables. */
  readonly env: Record<string, string>;
  /** The admission limits, counted here for every worker (shared-admission.ts). */
  readonly admission: AdmissionOptions;
  readonly logger: Logger;
}

/** The primary of `--workers N`. Resolves once every worker listens, with their shared address. */
export async function startPrimary(o: PrimaryOptions): Promise<Listening> {
  let host: LocalBrokerHost | undefined;
  const env: Record<string, string> = { ...o.env };
  if (o.localHistory !== undefined) {
    const path = join(tmpdir(), `herald-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
    host = new LocalBrokerHost({ ...o.localHistory, path });
    await host.start();
    env[LOCAL_BROKER_ENV] = path;
  }
  const admission = new AdmissionHost(o.admission);
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  let listening: Listening | undefined;
  const waiting = new Set<Worker>();
  let started!: (value: Listening) => void;
  let failed!: (error: Error) => void;
  const ready = new Promise<Listening>((resolve, reject) => {
    started = resolve;
    failed = reject;
  });

  const fork = (): void => {
    const worker = cluster.fork(env);
    waiting.add(worker);
    worker.on('message', (message: WorkerMessage) => {
      if (admission.enabled) admission.handle(worker, message);
      if (message?.herald === 'listening') {
        waiting.delete(worker);
        listening ??= { address: message.address, port: message.port };
        if (waiting.size === 0) started(listening);
      } else if (message?.herald === 'metrics') {
        aggregator.clusterMetrics().then(
          (text) => worker.isConnected() && worker.send({ herald: 'metrics', id: message.id, text }),
          (error: Error) =>
            worker.isConnected() && worker.send({ herald: 'metrics', id: message.id, error: error.message }),
        );
      }
    });
    worker.on('exit', (code, signal) => {
      admission.forget(worker);
      if (stopping) return;
      if (waiting.has(worker)) {
        // A worker that cannot start (a port in use, a bad key file) says why on stderr itself.
        failed(new Error(`a worker exited while starting (${signal ?? code})`));
        return;
      }
      o.logger.error({ worker: worker.process.pid, code, signal }, 'worker exited; starting another');
      setTimeout(() => !stopping && fork(), RESTART_DELAY_MS).unref();
    });
  };

  const stopAll = async (): Promise<number> => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    const codes = await Promise.all(
      workers.map(
        (worker) =>
          new Promise<number | null>((resolve) => {
            if (worker.isDead()) return resolve(worker.process.exitCode);
            worker.once('exit', (code) => resolve(code));
            worker.process.kill('SIGTERM');
          }),
      ),
    );
    await host?.close();
    if (host !== undefined) rmSync(host.path, { force: true });
    return codes.every((code) => code === 0) ? 0 : 1;
  };

  for (let i = 0; i < o.count; i++) fork();
  const timer = setTimeout(() => failed(new Error('the workers did not all listen within a minute')), START_TIMEOUT_MS);
  try {
    const address = await ready;
    onStopSignal(o.logger, stopAll);
    return address;
  } catch (error) {
    await stopAll();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM or SIGINT: every worker drains (each has the same deadline), then the primary exits. */
function onStopSignal(logger: Logger, stopAll: () => Promise<number>): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining every worker');
    setTimeout(() => process.exit(1), DRAIN_DEADLINE_MS + 2_000).unref();
    void stopAll().then((code) => {
      logger.info({ code }, 'stopped');
      process.exit(code);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

// ---- in a worker ---------------------------------------------------------------------------

/** Whether this process is a worker of `herald serve --workers N`. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/** Tells the primary this worker listens (the primary prints the banner once all do). */
export function reportListening(address: Listening): void {
  process.send?.({ herald: 'listening', address: address.address, port: address.port });
}

/**
 * `/metrics` of a worker: every worker's registry summed by the primary (prom-client's
 * AggregatorRegistry), so a scrape that lands on any worker sees the whole machine.
 */
export function clusterMetrics(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs the worker's listener that answers the primary's requests.
  new AggregatorRegistry();
  let nextId = 1;
  const waiting = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();
  process.on('message', (message: { herald?: string; id?: number; text?: string; error?: string }) => {
    if (message?.herald !== 'metrics' || message.id === undefined) return;
    const entry = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.error !== undefined) entry?.reject(new Error(message.error));
    else entry?.resolve(message.text ?? '');
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      process.send?.({ herald: 'metrics', id });
    });
}

/** The primary went away (killed): the worker drains and ends rather than live on alone. */
export function onPrimaryGone(stop: (reason: string) => void): void {
  process.on('disconnect', () => stop('primary gone'));
}
