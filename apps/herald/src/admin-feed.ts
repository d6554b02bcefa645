/**
 * The admin page's data: once a second every node publishes a snapshot of itself (connections,
 * counters and their rates, local channels, process figures, broker status) as an ephemeral
 * publication on `_herald:stats`. The page subscribes over the hub's own SSE and builds the node
 * list from these heartbeats, so it needs no extra endpoint, works the same on the memory broker
 * (a one-node list) and on Redis or NATS (every node sharing the broker shows up).
 *
 * Snapshots go through `hub.publishInternal`: `_herald:` is reserved (no client and no API request
 * may publish there), they are not user traffic, so they do not count in
 * `herald_publications_total`, and being ephemeral they are never stored.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { type HeraldServer, type Hub, type Subscription, type TransportKind } from '@herald/server';

/** The internal channel the snapshots travel on. `_herald:` is the namespace the hub's own pages use. */
export const ADMIN_CHANNEL = '_herald:stats';
export const INTERNAL_NAMESPACE = '_herald:';
/** The `sub` of admin page tokens: their connections are shown apart from user traffic. */
export const ADMIN_SUBJECT = '_herald-admin';
/** The SSE event name of a snapshot (so the page can `addEventListener('node', ...)`). */
export const SNAPSHOT_EVENT = 'node';
/** Channels listed per node, the busiest first; the count of all of them is sent too. */
const MAX_CHANNELS = 100;
const INTERVAL_MS = 1000;
/** The loop-delay histogram records whole timer intervals: the delay is what exceeds this. */
const LOOP_RESOLUTION_MS = 10;

type PerTransport = Record<TransportKind, number>;

/** What one node says about itself each second; the page's only input. */
export interface NodeSnapshot {
  readonly node: { id: string; host: string; pid: number; address: string; startedAt: number; version: string };
  readonly ts: number;
  /** Seconds the rates below were measured over (about 1). */
  readonly interval: number;
  readonly broker: { name: string; ready: boolean };
  readonly ready: boolean;
  /** Open connections per transport, admin page viewers included; `viewers` says how many of them. */
  readonly connections: PerTransport;
  readonly viewers: PerTransport;
  readonly totals: {
    publications: number;
    deliveries: PerTransport;
    slowConsumerDisconnects: number;
    authFailures: number;
    ephemeralDropped: number;
    rateLimited: number;
  };
  readonly rates: { publications: number; deliveries: number; slowConsumerDisconnects: number; authFailures: number };
  /** Present subscriptions on this node per channel (internal channels left out), busiest first. */
  readonly channels: { count: number; top: Array<[string, number]> };
  readonly process: {
    cpuPercent: number;
    rssBytes: number;
    heapUsedBytes: number;
    uptime: number;
    loopDelayMs: number;
  };
}

interface Sample {
  readonly at: number;
  readonly cpu: NodeJS.CpuUsage;
  readonly publications: number;
  readonly deliveries: number;
  readonly slow: number;
  readonly auth: number;
}

export class AdminFeed {
  readonly #server: HeraldServer;
  readonly #hub: Hub;
  readonly #id = randomBytes(4).toString('hex');
  readonly #startedAt = Date.now();
  readonly #channels = new Map<string, Set<Subscription>>();
  readonly #viewers: PerTransport = { websocket: 0, sse: 0, poll: 0, socketio: 0 };
  readonly #loop: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  readonly #removeHooks: () => void;
  #previous: Sample;
  #timer: NodeJS.Timeout | undefined;

  constructor(server: HeraldServer) {
    this.#server = server;
    this.#hub = server.hub;
    this.#previous = this.#sample();
    // Hooks run on the hub's path: each is a set or counter update, nothing more.
    this.#removeHooks = this.#hub.addHooks({
      subscribed: (sub) => {
        if (!sub.present || sub.channel.startsWith(INTERNAL_NAMESPACE)) return;
        let subs = this.#channels.get(sub.channel);
        if (subs === undefined) this.#channels.set(sub.channel, (subs = new Set()));
        subs.add(sub);
      },
      unsubscribed: (sub) => {
        const subs = this.#channels.get(sub.channel);
        if (subs?.delete(sub) === true && subs.size === 0) this.#channels.delete(sub.channel);
      },
      sessionOpened: (session) => {
        if (session.userId === ADMIN_SUBJECT) this.#viewers[session.kind] = (this.#viewers[session.kind] ?? 0) + 1;
      },
      sessionClosed: (session) => {
        if (session.userId === ADMIN_SUBJECT) this.#viewers[session.kind] = (this.#viewers[session.kind] ?? 1) - 1;
      },
    });
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#loop.enable();
    this.#timer = setInterval(() => this.#publish(), INTERVAL_MS).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#loop.disable();
    this.#removeHooks();
  }

  /** This node's snapshot now; advances the rate window. */
  snapshot(): NodeSnapshot {
    const hub = this.#hub;
    const stats = hub.stats;
    const now = this.#sample();
    const previous = this.#previous;
    this.#previous = now;
    const seconds = Math.max(0.001, (now.at - previous.at) / 1000);
    const rate = (a: number, b: number): number => round(Math.max(0, a - b) / seconds, 2);
    const cpuMicros = now.cpu.user - previous.cpu.user + (now.cpu.system - previous.cpu.system);
    const memory = memoryNow();
    const top = [...this.#channels]
      .map(([channel, subs]): [string, number] => [channel, subs.size])
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_CHANNELS);
    const p99 = this.#loop.percentile(99);
    const loopDelayMs = Number.isFinite(p99) ? Math.max(0, p99 / 1e6 - LOOP_RESOLUTION_MS) : 0;
    this.#loop.reset();
    return {
      node: {
        id: this.#id,
        host: hostname(),
        pid: process.pid,
        address: this.#address(),
        startedAt: this.#startedAt,
        version: process.version,
      },
      ts: now.at,
      interval: round(seconds, 3),
      broker: { name: hub.broker.name, ready: hub.broker.ready },
      ready: hub.ready,
      connections: { ...stats.connections },
      viewers: { ...this.#viewers },
      totals: {
        publications: stats.publications,
        deliveries: { ...stats.deliveries },
        slowConsumerDisconnects: stats.slowConsumerDisconnects,
        authFailures: stats.authFailures,
        ephemeralDropped: stats.ephemeralDropped,
        rateLimited: stats.rateLimited,
      },
      rates: {
        publications: rate(now.publications, previous.publications),
        deliveries: rate(now.deliveries, previous.deliveries),
        slowConsumerDisconnects: rate(now.slow, previous.slow),
        authFailures: rate(now.auth, previous.auth),
      },
      channels: { count: this.#channels.size, top },
      process: {
        cpuPercent: round(cpuMicros / 1e4 / seconds, 1),
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        uptime: Math.round(process.uptime()),
        loopDelayMs: round(loopDelayMs, 1),
      },
    };
  }

  #publish(): void {
    if (!this.#hub.broker.ready) return;
    const snapshot = this.snapshot();
    this.#hub
      .publishInternal({ channel: ADMIN_CHANNEL, data: snapshot, event: SNAPSHOT_EVENT, ephemeral: true })
      .catch((error: unknown) => this.#server.logger.debug({ err: error }, 'admin snapshot not published'));
  }

  #sample(): Sample {
    const stats = this.#hub.stats;
    let deliveries = 0;
    for (const n of Object.values(stats.deliveries)) deliveries += n;
    return {
      at: Date.now(),
      cpu: process.cpuUsage(),
      publications: stats.publications,
      deliveries,
      slow: stats.slowConsumerDisconnects,
      auth: stats.authFailures,
    };
  }

  #address(): string {
    const address = this.#server.httpServer.address();
    if (address === null || typeof address === 'string') return address ?? '';
    // Listening on every interface says nothing about the node: name it by its host instead.
    const unspecified = address.address === '0.0.0.0' || address.address === '::';
    const host = unspecified ? hostname() : address.address.includes(':') ? `[${address.address}]` : address.address;
    return `${host}:${address.port}`;
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * `process.memoryUsage()` reads /proc and throws EMFILE when every file descriptor is taken (a
 * hub at its open-file limit): the snapshot then shows 0 rather than end the process.
 */
function memoryNow(): { rss: number; heapUsed: number } {
  try {
    return process.memoryUsage();
  } catch {
    return { rss: 0, heapUsed: 0 };
  }
}
