/**
 * Redis Streams ingress: entries of streams onto channels, through a consumer group.
 *
 * At-least-once: an entry is XACKed only after the hub stored its publication. On start, and
 * after any failure, the consumer first re-reads its own pending entries (read but never acked),
 * then new ones; entries left pending by a consumer that went away are taken over with XAUTOCLAIM
 * once idle for `claimIdleMs`. Identity: stream key + entry id, which Redis never reuses in a
 * stream, so a re-read entry is published once within the hub's 5-minute idempotency window.
 *
 * Payload: the entry's `payloadField` (default `data`), decoded as JSON or text; an entry without
 * that field becomes its field map as a JSON object. Templates may use `{stream}` and `{field.NAME}`.
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { Hub } from '@herald/server';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { backoffDelay } from '../webhooks/backoff.js';
import { BridgeIngest, pause, type Bridge } from './ingest.js';
import { compileTemplate, type CompiledRoute, type Decoding } from './mapping.js';

export interface RedisStreamRouteOptions {
  readonly stream: string;
  readonly channel: string;
  readonly event?: string;
  readonly decode?: Decoding;
  /** Field holding the payload. Default `data`. */
  readonly payloadField?: string;
}

export interface RedisStreamBridgeOptions {
  readonly name: string;
  readonly url: string;
  /** Consumer group. Default `herald-<name>`. */
  readonly group?: string;
  /** This process's consumer name; keep it stable across restarts. Default the host name. */
  readonly consumer?: string;
  /** Where a group created now starts: new entries (default) or the whole stream. */
  readonly start?: 'new' | 'all';
  /** Entries per read. Default 100. */
  readonly batch?: number;
  /** How long a read waits for new entries, ms. Default 2000. */
  readonly blockMs?: number;
  /** Pending entries of other consumers idle this long are taken over, ms. Default 60000. */
  readonly claimIdleMs?: number;
  readonly routes: readonly RedisStreamRouteOptions[];
}

interface StreamRoute extends CompiledRoute {
  readonly stream: string;
  readonly payloadField: string;
}

type Entry = [id: string, fields: string[] | null];
type ReadReply = Array<[stream: string, entries: Entry[]]> | null;

export class RedisStreamBridge implements Bridge {
  readonly type = 'redis-stream';
  readonly name: string;
  readonly group: string;
  readonly consumer: string;
  readonly #options: RedisStreamBridgeOptions;
  readonly #routes: Map<string, StreamRoute>;
  readonly #ingest: BridgeIngest;
  readonly #logger: Logger;
  readonly #stop = new AbortController();
  readonly #redis: Redis;
  #loop: Promise<void> | undefined;

  constructor(options: RedisStreamBridgeOptions, hub: Hub, logger: Logger, messages: Counter<'bridge' | 'result'>) {
    this.name = options.name;
    this.#options = options;
    this.group = options.group ?? `herald-${options.name}`;
    this.consumer = options.consumer ?? hostname();
    this.#routes = new Map(
      options.routes.map((r) => {
        const names = ['stream', 'field.'];
        const route: StreamRoute = {
          stream: r.stream,
          payloadField: r.payloadField ?? 'data',
          address: { pattern: r.stream, captures: 0, match: (s) => (s === r.stream ? [] : undefined) },
          channel: compileTemplate(r.channel, 0, names),
          event: r.event === undefined ? undefined : compileTemplate(r.event, 0, names),
          decode: r.decode ?? 'auto',
        };
        return [r.stream, route];
      }),
    );
    if (this.#routes.size !== options.routes.length) throw new Error('each stream may appear in one route only');
    this.#logger = logger.child({ bridge: options.name });
    this.#ingest = new BridgeIngest(hub, options.name, this.#logger, messages);
    this.#redis = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    this.#redis.on('error', () => undefined); // reconnects by itself; the loop retries
  }

  async start(): Promise<void> {
    await this.#redis.connect();
    const from = this.#options.start === 'all' ? '0' : '$';
    for (const stream of this.#routes.keys()) {
      await this.#redis.xgroup('CREATE', stream, this.group, from, 'MKSTREAM').catch((error: Error) => {
        if (!error.message.includes('BUSYGROUP')) throw error;
      });
    }
    this.#loop = this.#run();
  }

  async close(): Promise<void> {
    this.#stop.abort();
    // Ends a blocking read at once; the loop sees the stop and returns.
    this.#redis.disconnect();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const streams = [...this.#routes.keys()];
    const batch = this.#options.batch ?? 100;
    const claimIdleMs = this.#options.claimIdleMs ?? 60_000;
    let backlog = true;
    let failures = 0;
    let nextClaim = 0;
    while (!this.#stop.signal.aborted) {
      try {
        if (Date.now() >= nextClaim) {
          nextClaim = Date.now() + claimIdleMs / 2;
          if (await this.#claim(streams, claimIdleMs, batch)) backlog = true;
        }
        // Own pending entries first ("0"), then new ones (">").
        const reply = (await (backlog
          ? this.#redis.xreadgroup(
              'GROUP',
              this.group,
              this.consumer,
              'COUNT',
              batch,
              'STREAMS',
              ...streams,
              ...streams.map(() => '0'),
            )
          : this.#redis.xreadgroup(
              'GROUP',
              this.group,
              this.consumer,
              'COUNT',
              batch,
              'BLOCK',
              this.#options.blockMs ?? 2000,
              'STREAMS',
              ...streams,
              ...streams.map(() => '>'),
            ))) as ReadReply;
        const entries = (reply ?? []).flatMap(([stream, list]) => list.map((entry) => [stream, entry] as const));
        if (backlog && entries.length === 0) backlog = false;
        for (const [stream, [id, fields]] of entries) await this.#handle(stream, id, fields);
        failures = 0;
      } catch (error) {
        if (this.#stop.signal.aborted) break;
        failures++;
        backlog = true;
        this.#logger.warn({ err: error, failures }, 'redis stream bridge failed; re-reading pending entries');
        await pause(backoffDelay(failures, 200, 10_000), this.#stop.signal);
      }
    }
  }

  /** Takes over entries other consumers left pending too long. Resolves true when it took any. */
  async #claim(streams: readonly string[], idleMs: number, batch: number): Promise<boolean> {
    let took = false;
    for (const stream of streams) {
      const [, claimed] = (await this.#redis.xautoclaim(
        stream,
        this.group,
        this.consumer,
        idleMs,
        '0-0',
        'COUNT',
        batch,
        'JUSTID',
      )) as [string, string[]];
      if (claimed.length > 0) took = true;
    }
    return took;
  }

  /** Publishes one entry, then acks it; throws (no ack) when the hub is unavailable. */
  async #handle(stream: string, id: string, fields: string[] | null): Promise<void> {
    const route = this.#routes.get(stream);
    if (route !== undefined && fields !== null) {
      const named: Record<string, string> = { stream };
      for (let i = 0; i + 1 < fields.length; i += 2) named[`field.${fields[i]}`] = fields[i + 1] as string;
      const raw = named[`field.${route.payloadField}`];
      const payload = Buffer.from(
        raw ??
          JSON.stringify(
            Object.fromEntries(
              Object.entries(named)
                .filter(([k]) => k.startsWith('field.'))
                .map(([k, v]) => [k.slice(6), v]),
            ),
          ),
      );
      await this.#ingest.ingest({
        route: raw === undefined ? { ...route, decode: 'json' } : route,
        vars: { captures: [], named },
        payload,
        identity: `${stream}:${id}`,
      });
    }
    // Entries trimmed away while pending come back with no fields: nothing to publish, ack them.
    await this.#redis.xack(stream, this.group, id);
  }
}
