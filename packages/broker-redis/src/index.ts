/**
 * `@herald/broker-redis`: the Redis broker and presence store for running several Herald nodes
 * on one Redis (docs/scale-out.md). The binary composes them; the server library never imports them.
 */
import type { Broker, HistoryLimits, PresenceStore, PublishQueueLimits, RevocationStore } from '@herald/server';
import { pino, type Logger } from 'pino';
import { RedisKeys } from './keys.js';
import { RedisLink } from './link.js';
import { RedisBroker } from './redis-broker.js';
import { RedisPresence } from './redis-presence.js';
import { RedisRevocations } from './redis-revocations.js';

export { RedisBroker, type RedisBrokerOptions } from './redis-broker.js';
export { RedisPresence, type RedisPresenceOptions } from './redis-presence.js';
export { RedisRevocations, type RedisRevocationsOptions } from './redis-revocations.js';
export { RedisKeys } from './keys.js';
export { RedisLink, type RedisLinkOptions } from './link.js';

export interface RedisBackendOptions {
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://…`. A `?prefix=NAME` query sets the
   * key prefix (default `herald`): nodes of one deployment share it.
   */
  readonly url: string;
  readonly history: HistoryLimits;
  readonly logger?: Logger;
  /** Seconds a dead node's clients stay in presence at most. Default 30. */
  readonly presenceTtlSeconds?: number;
  /** Prefix of every key and pub/sub channel; overrides the URL's `prefix`. */
  readonly prefix?: string;
  /** Seconds an idle channel keeps its offset and epoch. Default 86400 (and at least the history ttl). */
  readonly streamMetaTtlSeconds?: number;
  /** Milliseconds before an unanswered Redis command fails. Default 5000. */
  readonly commandTimeoutMs?: number;
  /**
   * The bound on publications waiting for Redis: past `maxPending` (default 10000) a publish is
   * refused at once with 429, and while the oldest one has waited `maxWaitMs` (default 2000) with 503.
   */
  readonly publishQueue?: Partial<PublishQueueLimits>;
}

export const REDIS_DEFAULTS = {
  presenceTtlSeconds: 30,
  prefix: 'herald',
  streamMetaTtlSeconds: 86_400,
  commandTimeoutMs: 5_000,
} as const;

/**
 * A broker, a presence store and a revocation store sharing one pair of connections;
 * `broker.start` connects them.
 */
export async function createRedisBackend(
  options: RedisBackendOptions,
): Promise<{ broker: Broker; presence: PresenceStore; revocations: RevocationStore }> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const presenceTtlSeconds = options.presenceTtlSeconds ?? REDIS_DEFAULTS.presenceTtlSeconds;
  if (!(presenceTtlSeconds > 0)) throw new Error('presenceTtlSeconds must be positive');
  const { url, prefix } = parseUrl(options.url);
  const link = new RedisLink({
    url,
    commandTimeoutMs: options.commandTimeoutMs ?? REDIS_DEFAULTS.commandTimeoutMs,
    logger,
  });
  const keys = new RedisKeys(options.prefix ?? prefix ?? REDIS_DEFAULTS.prefix);
  const broker = new RedisBroker(link, keys, {
    ...options.history,
    streamMetaTtlSeconds: options.streamMetaTtlSeconds ?? REDIS_DEFAULTS.streamMetaTtlSeconds,
    logger,
    ...(options.publishQueue === undefined ? {} : { publishQueue: options.publishQueue }),
  });
  const presence = new RedisPresence(link, keys, { ttlSeconds: presenceTtlSeconds, logger });
  const revocations = new RedisRevocations(link, keys, { logger });
  return { broker, presence, revocations };
}

/** Takes Herald's `prefix` out of the URL; the rest goes to ioredis as it is. */
function parseUrl(text: string): { url: string; prefix?: string } {
  const url = new URL(text);
  const prefix = url.searchParams.get('prefix');
  if (prefix === null) return { url: text };
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)) throw new Error(`redis prefix "${prefix}" is not a valid key prefix`);
  url.searchParams.delete('prefix');
  return { url: url.toString(), prefix };
}
