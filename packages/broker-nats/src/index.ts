/**
 * `@herald/broker-nats`: the NATS JetStream broker and presence store for running several Herald
 * nodes on one NATS (docs/scale-out.md). The binary composes them; the server library never
 * imports them.
 */
import type { Broker, HistoryLimits, PresenceStore, PublishQueueLimits, RevocationStore } from '@herald/server';
import { pino, type Logger } from 'pino';
import { NatsLink } from './link.js';
import { NatsNames } from './names.js';
import { NatsBroker } from './nats-broker.js';
import { NatsPresence } from './nats-presence.js';
import { NatsRevocations } from './nats-revocations.js';

export { NatsBroker, type NatsBrokerOptions } from './nats-broker.js';
export { NatsPresence, type NatsPresenceOptions } from './nats-presence.js';
export { NatsRevocations, type NatsRevocationsOptions } from './nats-revocations.js';
export { NatsNames } from './names.js';
export { NatsLink, type NatsLinkOptions } from './link.js';

export interface NatsBackendOptions {
  /**
   * `nats://host:port` (several: comma-separated). A `?prefix=NAME` query names the streams,
   * buckets and subjects (default `herald`): nodes of one deployment share it.
   */
  readonly url: string;
  readonly history: HistoryLimits;
  readonly logger?: Logger;
  /** Seconds a dead node's clients stay in presence at most. Default 30. */
  readonly presenceTtlSeconds?: number;
  /** Overrides the URL's `prefix`. */
  readonly prefix?: string;
  /** Seconds an idle channel keeps its offset and epoch. Default 86400 (and at least the history ttl). */
  readonly streamMetaTtlSeconds?: number;
  /** JetStream storage: `file` survives a NATS restart (default), `memory` does not. */
  readonly storage?: 'file' | 'memory';
  readonly replicas?: number;
  /** Milliseconds before an unanswered NATS request fails. Default 5000. */
  readonly timeoutMs?: number;
  /**
   * Seconds the revocation bucket keeps an entry after it was written: at least the hub's maximum
   * token lifetime plus twice its leeway plus a minute. 0 (the default) = for good.
   */
  readonly revocationRetentionSeconds?: number;
  /**
   * The bound on publications waiting for NATS: past `maxPending` (default 10000) a publish is
   * refused at once with 429, and while a channel's message has waited `maxWaitMs` (default 2000)
   * for its answer, that channel's publishes are refused with 503.
   */
  readonly publishQueue?: Partial<PublishQueueLimits>;
}

export const NATS_DEFAULTS = {
  presenceTtlSeconds: 30,
  prefix: 'herald',
  streamMetaTtlSeconds: 86_400,
  storage: 'file',
  replicas: 1,
  timeoutMs: 5_000,
} as const;

/** A broker, a presence store and a revocation store sharing one connection; `broker.start` connects it. */
export async function createNatsBackend(
  options: NatsBackendOptions,
): Promise<{ broker: Broker; presence: PresenceStore; revocations: RevocationStore }> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const { servers, prefix } = parseUrl(options.url);
  const presenceTtlSeconds = options.presenceTtlSeconds ?? NATS_DEFAULTS.presenceTtlSeconds;
  if (!(presenceTtlSeconds > 0)) throw new Error('presenceTtlSeconds must be positive');
  const names = new NatsNames(options.prefix ?? prefix ?? NATS_DEFAULTS.prefix);
  const timeoutMs = options.timeoutMs ?? NATS_DEFAULTS.timeoutMs;
  const link = new NatsLink({ servers, logger, timeoutMs });
  const storage = { storage: options.storage ?? NATS_DEFAULTS.storage, replicas: options.replicas ?? 1 };
  const broker = new NatsBroker(link, names, {
    ...options.history,
    ...storage,
    streamMetaTtlSeconds: options.streamMetaTtlSeconds ?? NATS_DEFAULTS.streamMetaTtlSeconds,
    timeoutMs,
    logger,
    ...(options.publishQueue === undefined ? {} : { publishQueue: options.publishQueue }),
  });
  const presence = new NatsPresence(link, names, { ...storage, ttlSeconds: presenceTtlSeconds, logger });
  const retentionSeconds = options.revocationRetentionSeconds ?? 0;
  if (!(Number.isInteger(retentionSeconds) && retentionSeconds >= 0)) {
    throw new Error('revocationRetentionSeconds must be a whole number of seconds (0 = for good)');
  }
  const revocations = new NatsRevocations(link, names, { ...storage, retentionSeconds, logger });
  return { broker, presence, revocations };
}

/** `nats://a:4222,nats://b:4222?prefix=x` → the server list and the prefix. */
function parseUrl(url: string): { servers: string; prefix?: string } {
  const q = url.indexOf('?');
  if (q < 0) return { servers: url };
  const prefix = new URLSearchParams(url.slice(q + 1)).get('prefix') ?? undefined;
  return prefix === undefined ? { servers: url.slice(0, q) } : { servers: url.slice(0, q), prefix };
}
