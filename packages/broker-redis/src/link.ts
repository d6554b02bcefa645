/**
 * The two Redis connections of a node, shared by its broker and presence store: one for
 * commands and scripts, one for pub/sub (a subscribed Redis connection can run nothing else).
 *
 * Failure policy: nothing waits for Redis. The offline queue is off and in-flight commands are
 * not re-sent after a reconnect, so a publish during an outage fails at once (the hub answers
 * 503) instead of being acknowledged late, or twice. ioredis reconnects forever in the background;
 * listeners hear every change of either connection.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export interface RedisLinkOptions {
  readonly url: string;
  /** A command that got no answer in this time fails. */
  readonly commandTimeoutMs: number;
  readonly logger: Logger;
}

const RECONNECT_MAX_DELAY_MS = 1_000;

export class RedisLink {
  readonly commands: Redis;
  readonly pubsub: Redis;
  readonly #listeners = new Set<() => void>();
  readonly #logger: Logger;
  #users = 0;
  #connecting: Promise<void> | undefined;
  #lastError = '';

  constructor(options: RedisLinkOptions) {
    this.#logger = options.logger;
    const base: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      // The broker resubscribes itself, so it knows when every channel is delivered again.
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      retryStrategy: (attempt) => Math.min(50 * attempt, RECONNECT_MAX_DELAY_MS),
    };
    this.commands = new Redis(options.url, { ...base, connectionName: 'herald-commands' });
    this.pubsub = new Redis(options.url, { ...base, connectionName: 'herald-pubsub' });
    for (const [role, redis] of [
      ['commands', this.commands],
      ['pubsub', this.pubsub],
    ] as const) {
      redis.on('ready', () => this.#changed());
      redis.on('close', () => this.#changed());
      // Without a listener ioredis would print connection errors; reconnecting is the answer.
      redis.on('error', (error: Error) => {
        this.#lastError = error.message;
        this.#logger.debug({ err: error, role }, 'redis connection error');
      });
    }
  }

  get commandsReady(): boolean {
    return this.commands.status === 'ready';
  }

  get pubsubReady(): boolean {
    return this.pubsub.status === 'ready';
  }

  /** Registers a user (broker or presence store); the connections end with the last `release`. */
  acquire(): void {
    this.#users++;
  }

  /** Connects both connections the first time; later calls share that attempt. */
  connect(): Promise<void> {
    this.#connecting ??= Promise.all([this.commands.connect(), this.pubsub.connect()]).then(
      () => undefined,
      (error: unknown) => {
        this.commands.disconnect();
        this.pubsub.disconnect();
        const reason = this.#lastError || (error instanceof Error ? error.message : String(error));
        throw new Error(`cannot connect to redis: ${reason}`);
      },
    );
    return this.#connecting;
  }

  /** Calls `listener` whenever either connection becomes ready or closes. Returns an unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async release(): Promise<void> {
    if (--this.#users > 0) return;
    this.#listeners.clear();
    await Promise.all([quit(this.commands), quit(this.pubsub)]);
  }

  #changed(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (error) {
        this.#logger.error({ err: error }, 'redis link listener threw');
      }
    }
  }
}

/** QUIT when connected (pending replies arrive first), otherwise just stop reconnecting. */
async function quit(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
