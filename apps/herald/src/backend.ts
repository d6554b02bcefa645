/** Picks the broker and presence store for `HERALD_BROKER`. The server library never imports these. */
import type { Broker, HistoryLimits, PresenceStore, PublishQueueLimits, RevocationStore } from '@herald/server';
import { MemoryBroker, MemoryPresence, MemoryRevocationStore } from '@herald/server';
import type { Logger } from 'pino';

export interface Backend {
  readonly broker: Broker;
  readonly presence: PresenceStore;
  readonly revocations: RevocationStore;
}

export interface BackendOptions {
  /** Seconds a dead node's clients stay in presence at most (Redis and NATS; default 30). */
  readonly presenceTtlSeconds?: number | undefined;
  /** NATS: seconds the revocation bucket keeps an entry (0 or absent = for good). */
  readonly revocationRetentionSeconds?: number | undefined;
  /** Redis and NATS: the bound on publications waiting for the broker (defaults apply). */
  readonly publishQueue?: Partial<PublishQueueLimits>;
  /** The embedded broker in a worker of `--workers N`: the unix socket of the primary's host. */
  readonly localBroker?: string;
}

export async function createBackend(
  url: string,
  history: HistoryLimits,
  logger: Logger,
  options: BackendOptions = {},
): Promise<Backend> {
  if (url === 'memory' && options.localBroker !== undefined) {
    const { createLocalBackend } = await import('@herald/broker-local');
    return createLocalBackend(options.localBroker);
  }
  if (url === 'memory') {
    return {
      broker: new MemoryBroker(history),
      presence: new MemoryPresence(),
      revocations: new MemoryRevocationStore(),
    };
  }
  const shared = {
    url,
    history,
    logger,
    ...(options.presenceTtlSeconds === undefined ? {} : { presenceTtlSeconds: options.presenceTtlSeconds }),
    ...(options.publishQueue === undefined ? {} : { publishQueue: options.publishQueue }),
  };
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { createRedisBackend } = await import('@herald/broker-redis');
    return createRedisBackend(shared);
  }
  if (url.startsWith('nats://')) {
    const { createNatsBackend } = await import('@herald/broker-nats');
    const retention = options.revocationRetentionSeconds;
    return createNatsBackend({
      ...shared,
      ...(retention === undefined ? {} : { revocationRetentionSeconds: retention }),
    });
  }
  throw new Error(`unsupported broker URL ${url}`);
}

/** The broker URL without any password, for logs and the banner. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
