/** Picks the broker and presence store for `HERALD_BROKER`. The server library never imports these. */
import type { Broker, HistoryLimits, PresenceStore } from '@herald/server';
import { MemoryBroker, MemoryPresence } from '@herald/server';
import type { Logger } from 'pino';

export interface Backend {
  readonly broker: Broker;
  readonly presence: PresenceStore;
}

export interface BackendOptions {
  /** Seconds a dead node's clients stay in presence at most (Redis and NATS; default 30). */
  readonly presenceTtlSeconds?: number | undefined;
}

export async function createBackend(
  url: string,
  history: HistoryLimits,
  logger: Logger,
  options: BackendOptions = {},
): Promise<Backend> {
  if (url === 'memory') return { broker: new MemoryBroker(history), presence: new MemoryPresence() };
  const shared = {
    url,
    history,
    logger,
    ...(options.presenceTtlSeconds === undefined ? {} : { presenceTtlSeconds: options.presenceTtlSeconds }),
  };
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { createRedisBackend } = await import('@herald/broker-redis');
    return createRedisBackend(shared);
  }
  if (url.startsWith('nats://')) {
    const { createNatsBackend } = await import('@herald/broker-nats');
    return createNatsBackend(shared);
  }
  throw new Error(`unsupported broker URL ${url}`);
}

/** The broker URL without any password, for logs and the banner. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
