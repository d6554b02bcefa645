/**
 * The node's NATS connection, shared by its broker and presence store. nats.js reconnects forever
 * (and resubscribes core subscriptions by itself); listeners hear each disconnect and reconnect.
 */
import { Events, connect, type JetStreamClient, type JetStreamManager, type NatsConnection } from 'nats';
import type { Logger } from 'pino';

export interface NatsLinkOptions {
  /** `nats://host:port`, or several separated by commas. */
  readonly servers: string;
  readonly logger: Logger;
  /** Milliseconds before an unanswered JetStream request fails. */
  readonly timeoutMs: number;
}

export interface NatsSession {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

export class NatsLink {
  readonly #options: NatsLinkOptions;
  readonly #listeners = new Set<(connected: boolean) => void>();
  #session: NatsSession | undefined;
  #connecting: Promise<NatsSession> | undefined;
  #connected = false;
  #users = 0;

  constructor(options: NatsLinkOptions) {
    this.#options = options;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The connection; throws before `connect` resolved. */
  get session(): NatsSession {
    if (this.#session === undefined) throw new Error('nats is not connected');
    return this.#session;
  }

  acquire(): void {
    this.#users++;
  }

  connect(): Promise<NatsSession> {
    this.#connecting ??= this.#connect();
    return this.#connecting;
  }

  onChange(listener: (connected: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async release(): Promise<void> {
    if (--this.#users > 0) return;
    this.#listeners.clear();
    const nc = this.#session?.nc;
    this.#session = undefined;
    this.#connected = false;
    if (nc !== undefined && !nc.isClosed()) await nc.close();
  }

  async #connect(): Promise<NatsSession> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.#options.servers.split(',').map((s) => s.trim()),
        name: 'herald',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 100,
        pingInterval: 10_000,
        maxPingOut: 3,
        timeout: this.#options.timeoutMs,
        // Without it every request captures two stack traces up front, in case it fails: most
        // of the CPU of a busy node's history reads and KV writes.
        noAsyncTraces: true,
      });
    } catch (error) {
      throw new Error(`cannot connect to nats: ${error instanceof Error ? error.message : String(error)}`);
    }
    const session: NatsSession = {
      nc,
      js: nc.jetstream({ timeout: this.#options.timeoutMs }),
      jsm: await nc.jetstreamManager({ timeout: this.#options.timeoutMs }),
    };
    this.#session = session;
    this.#connected = true;
    void this.#watch(nc);
    return session;
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) this.#set(false);
      else if (status.type === Events.Reconnect) this.#set(true);
      else if (status.type === Events.Error) this.#options.logger.warn({ data: status.data }, 'nats error');
    }
    this.#set(false);
  }

  #set(connected: boolean): void {
    if (connected === this.#connected) return;
    this.#connected = connected;
    this.#options.logger.info({ connected }, connected ? 'nats reconnected' : 'nats disconnected');
    for (const listener of [...this.#listeners]) {
      try {
        listener(connected);
      } catch (error) {
        this.#options.logger.error({ err: error }, 'nats link listener threw');
      }
    }
  }
}
