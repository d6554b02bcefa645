/**
 * Follows this node's hub through its hooks and keeps the connection registry told: the first
 * connection of a user on this node joins the user, the last one leaves it; the same for present
 * subscribers of a channel. A sweep loop collects the cluster-wide `down` transitions the
 * registry hands this node; `up` transitions come straight from `join`. Listeners get each
 * transition once per cluster (see ConnectionRegistry).
 *
 * Registry calls for one id run one after another, in the order the hub saw the changes, so a
 * quick close-then-open never reaches the registry as open-then-close.
 */
import type { Hub, Session, Subscription } from '@herald/server';
import type { Logger } from 'pino';
import type { ConnectionRegistry, TrackedKind, Transition } from './connection-registry.js';

export interface TrackerOptions {
  /** A user with no connection left goes offline after this long without reconnecting. */
  readonly offlineDelayMs: number;
  /** A channel with no present subscriber left is vacated after this long. */
  readonly vacatedDelayMs: number;
  /** How often the registry is swept (heartbeat, due transitions). */
  readonly sweepIntervalMs: number;
}

export type TransitionListener = (transition: Transition) => void;

export class ConnectionTracker {
  readonly registry: ConnectionRegistry;
  readonly #hub: Hub;
  readonly #logger: Logger;
  readonly #options: TrackerOptions;
  readonly #counts: Record<TrackedKind, Map<string, number>> = { user: new Map(), channel: new Map() };
  /** What this tracker counted, so that ends of things it never saw are ignored. */
  readonly #sessions = new WeakSet<Session>();
  readonly #subscriptions = new WeakSet<Subscription>();
  /** The tail of each id's chain of registry calls. */
  readonly #chains = new Map<string, Promise<void>>();
  readonly #listeners: TransitionListener[] = [];
  #removeHooks: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  /** Registry calls that failed (Redis or NATS unreachable); reported as a metric. */
  errors = 0;

  constructor(hub: Hub, registry: ConnectionRegistry, options: TrackerOptions, logger: Logger) {
    this.#hub = hub;
    this.registry = registry;
    this.#options = options;
    this.#logger = logger;
  }

  onTransition(listener: TransitionListener): void {
    this.#listeners.push(listener);
  }

  /** Starts the registry, counts what the hub already has, then follows it. */
  async start(): Promise<void> {
    await this.registry.start();
    this.#removeHooks = this.#hub.addHooks({
      sessionOpened: (session) => this.#sessionOpened(session),
      sessionClosed: (session) => this.#sessionClosed(session),
      subscribed: (sub) => this.#subscribed(sub),
      unsubscribed: (sub) => this.#unsubscribed(sub),
    });
    for (const session of this.#hub.sessions()) {
      this.#sessionOpened(session);
      for (const sub of session.subscriptions.values()) this.#subscribed(sub);
    }
    this.#timer = setInterval(() => void this.sweep(), this.#options.sweepIntervalMs);
    this.#timer.unref();
  }

  /** Sweeps now (the loop calls this; tests may too). Never runs two sweeps at once. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  async close(): Promise<void> {
    this.#removeHooks?.();
    clearInterval(this.#timer);
    await this.#sweeping;
    await Promise.all(this.#chains.values());
    await this.registry.close({
      delays: { user: this.#options.offlineDelayMs, channel: this.#options.vacatedDelayMs },
    });
  }

  /** This node's connections of a user (for tests and metrics). */
  localCount(kind: TrackedKind, id: string): number {
    return this.#counts[kind].get(id) ?? 0;
  }

  async #sweep(): Promise<void> {
    let transitions: Transition[];
    try {
      transitions = await this.registry.sweep();
    } catch (error) {
      this.errors++;
      this.#logger.warn({ err: error, registry: this.registry.name }, 'connection registry sweep failed');
      return;
    }
    for (const t of transitions) this.#emit(t);
  }

  #sessionOpened(session: Session): void {
    if (session.userId === '' || this.#sessions.has(session)) return;
    this.#sessions.add(session);
    this.#increment('user', session.userId);
  }

  #sessionClosed(session: Session): void {
    if (!this.#sessions.has(session)) return;
    this.#sessions.delete(session);
    this.#decrement('user', session.userId);
  }

  #subscribed(sub: Subscription): void {
    if (!sub.present || this.#subscriptions.has(sub)) return;
    this.#subscriptions.add(sub);
    this.#increment('channel', sub.channel);
  }

  #unsubscribed(sub: Subscription): void {
    if (!this.#subscriptions.has(sub)) return;
    this.#subscriptions.delete(sub);
    this.#decrement('channel', sub.channel);
  }

  #increment(kind: TrackedKind, id: string): void {
    const counts = this.#counts[kind];
    const n = (counts.get(id) ?? 0) + 1;
    counts.set(id, n);
    if (n === 1) {
      this.#chain(kind, id, async () => {
        if (await this.registry.join(kind, id)) this.#emit({ kind, id, state: 'up', at: Date.now() });
      });
    }
  }

  #decrement(kind: TrackedKind, id: string): void {
    const counts = this.#counts[kind];
    const n = (counts.get(id) ?? 0) - 1;
    if (n > 0) {
      counts.set(id, n);
      return;
    }
    counts.delete(id);
    const delay = kind === 'user' ? this.#options.offlineDelayMs : this.#options.vacatedDelayMs;
    this.#chain(kind, id, () => this.registry.leave(kind, id, delay));
  }

  #chain(kind: TrackedKind, id: string, step: () => Promise<void>): void {
    const key = `${kind}\0${id}`;
    const run = (this.#chains.get(key) ?? Promise.resolve())
      .then(step)
      .catch((error: unknown) => {
        this.errors++;
        this.#logger.warn({ err: error, kind, registry: this.registry.name }, 'connection registry update failed');
      })
      .finally(() => {
        if (this.#chains.get(key) === run) this.#chains.delete(key);
      });
    this.#chains.set(key, run);
  }

  #emit(transition: Transition): void {
    for (const listener of this.#listeners) {
      try {
        listener(transition);
      } catch (error) {
        this.#logger.error({ err: error }, 'transition listener threw');
      }
    }
  }
}
