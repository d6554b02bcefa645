/**
 * The push bridge: a publication with a `push` section on a user's channel becomes a Web Push to
 * that user's registered browsers, when the user has no live connection on any node.
 *
 * Decisions, in order, each counted in `herald_push_decisions_total{decision}`:
 * duplicate (this publication was already handled: channel+epoch+offset claimed once across
 * nodes), online (a live connection anywhere: the client gets the publication itself), muted,
 * quiet_hours (unless urgency is high), rate_limited, no_subscriptions, else send.
 *
 * Bound and owner: jobs wait in a queue of `queueSize`; when it is full new jobs are refused
 * (decision `queue_full`) rather than older ones dropped: each push is independent, and the ones
 * already queued are as valid as the new one. Sends to one push service are retried a few times
 * (429, 5xx, network) with backoff; 404/410 remove the subscription.
 */
import { HeraldError } from '@herald/protocol';
import type { Hub, PublicationRecord } from '@herald/server';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { counter, gauge, histogram } from '../metrics.js';
import type { ConnectionRegistry } from '../presence/connection-registry.js';
import { backoffDelay } from '../webhooks/backoff.js';
import { DEFAULT_PREFERENCES, inQuietHours, isMuted } from './preferences.js';
import { parsePushSection, pushPayload, type PushSection } from './section.js';
import type { PushOutcome, WebPushSender } from './sender.js';
import type { PushStore, PushSubscriptionRecord } from './store.js';
import type { UserChannelMatcher } from './user-channels.js';

export interface PushNotifierOptions {
  readonly userChannels: UserChannelMatcher;
  /** Whether client publishes (with a client JWT) may carry `push`; the API key always may. */
  readonly allowClientPush: boolean;
  /** Pushes per user per window; undefined = no limit. */
  readonly rateLimit: { readonly limit: number; readonly windowSeconds: number } | undefined;
  /** TTL when the section gives none, seconds. */
  readonly defaultTtlSeconds: number;
  /** How long a handled publication is remembered for dedupe, seconds. */
  readonly dedupeTtlSeconds: number;
  readonly queueSize: number;
  readonly concurrency: number;
  /** Attempts per subscription, the first included. */
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly maxSubscriptionsPerUser: number;
}

export type PushDecision =
  | 'send'
  | 'duplicate'
  | 'online'
  | 'muted'
  | 'quiet_hours'
  | 'rate_limited'
  | 'no_subscriptions'
  | 'queue_full'
  | 'error';

interface Job {
  readonly userId: string;
  readonly record: PublicationRecord;
  readonly section: PushSection;
}

export class PushNotifier {
  readonly store: PushStore;
  readonly sender: WebPushSender;
  readonly options: PushNotifierOptions;
  readonly #registry: ConnectionRegistry;
  readonly #logger: Logger;
  readonly #queue: Job[] = [];
  readonly #idle: Array<() => void> = [];
  #active = 0;
  #closed = false;
  #detach: Array<() => void> = [];
  readonly #metrics;

  constructor(
    store: PushStore,
    sender: WebPushSender,
    registry: ConnectionRegistry,
    options: PushNotifierOptions,
    logger: Logger,
    metrics?: Registry,
  ) {
    this.store = store;
    this.sender = sender;
    this.#registry = registry;
    this.options = options;
    this.#logger = logger;
    this.#metrics = {
      decisions: counter(metrics, 'herald_push_decisions_total', 'Push-carrying publications, by decision.', [
        'decision',
      ]),
      deliveries: counter(metrics, 'herald_push_deliveries_total', 'Push requests to push services, by result.', [
        'result',
      ]),
      seconds: histogram(metrics, 'herald_push_send_seconds', 'Time of one push request, encryption included.'),
    };
    gauge(metrics, 'herald_push_queue_depth', 'Push jobs waiting or running.', () => this.#queue.length + this.#active);
  }

  /** Registers the `push` publish extension and follows publications. */
  attach(hub: Hub): void {
    this.#detach.push(
      hub.addPublishExtension('push', (value, { channel, publisher }) => {
        if (publisher !== undefined && !this.options.allowClientPush) {
          throw new HeraldError('forbidden', 'client publishes may not carry push; publish with the API key');
        }
        if (this.options.userChannels(channel) === undefined) {
          throw new HeraldError('bad_request', `push needs a user channel; ${channel} is not one`);
        }
        return parsePushSection(value);
      }),
      hub.addHooks({
        published: (record, _publisher, extensions) => {
          const section = extensions.push as PushSection | undefined;
          if (section !== undefined) this.notify(record, section);
        },
      }),
    );
  }

  /** Queues the push of one publication (the `published` hook calls this). */
  notify(record: PublicationRecord, section: PushSection): void {
    const userId = this.options.userChannels(record.channel);
    if (userId === undefined) return;
    if (this.#closed || this.#queue.length >= this.options.queueSize) return this.#decide('queue_full');
    this.#queue.push({ userId, record, section });
    this.#pump();
  }

  /** Stops taking jobs and waits up to `graceMs` for the queued ones. */
  async close(graceMs = 5000): Promise<void> {
    this.#closed = true;
    for (const detach of this.#detach.splice(0)) detach();
    let timer: NodeJS.Timeout | undefined;
    const idle =
      this.#queue.length + this.#active === 0 ? Promise.resolve() : new Promise<void>((r) => this.#idle.push(r));
    await Promise.race([idle, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.#queue.length = 0;
  }

  #pump(): void {
    while (this.#active < this.options.concurrency) {
      const job = this.#queue.shift();
      if (job === undefined) break;
      this.#active++;
      void this.#process(job)
        .catch((error: unknown) => {
          this.#decide('error');
          this.#logger.warn({ err: error, channel: job.record.channel }, 'push failed');
        })
        .finally(() => {
          this.#active--;
          this.#pump();
          if (this.#queue.length + this.#active === 0) for (const resolve of this.#idle.splice(0)) resolve();
        });
    }
  }

  async #process({ userId, record, section }: Job): Promise<void> {
    const store = this.store;
    if (record.offset !== 0) {
      const key = `${record.channel}:${record.epoch}:${record.offset}`;
      if (!(await store.claimOnce(key, this.options.dedupeTtlSeconds))) return this.#decide('duplicate');
    }
    if (await this.#registry.isConnected('user', userId)) return this.#decide('online');
    const preferences = (await store.getPreferences(userId)) ?? DEFAULT_PREFERENCES;
    if (isMuted(preferences, record.channel)) return this.#decide('muted');
    if (section.urgency !== 'high' && inQuietHours(preferences, Date.now())) return this.#decide('quiet_hours');
    const rate = this.options.rateLimit;
    if (rate !== undefined && !(await store.takeRateToken(userId, rate.limit, rate.windowSeconds))) {
      return this.#decide('rate_limited');
    }
    const now = Date.now();
    const subscriptions: PushSubscriptionRecord[] = [];
    for (const sub of await store.listSubscriptions(userId)) {
      if (sub.expirationTime !== null && sub.expirationTime <= now) {
        await store.removeSubscription(userId, sub.id);
        this.#metrics.deliveries.inc({ result: 'expired' });
      } else {
        subscriptions.push(sub);
      }
    }
    if (subscriptions.length === 0) return this.#decide('no_subscriptions');
    this.#decide('send');
    const { ts } = JSON.parse(record.json) as { ts: number };
    const payload = pushPayload(section, {
      channel: record.channel,
      offset: record.offset,
      epoch: record.epoch,
      ...(record.event === undefined ? {} : { event: record.event }),
      ts,
    });
    await Promise.all(subscriptions.map((sub) => this.#deliver(userId, sub, payload, section)));
  }

  async #deliver(userId: string, sub: PushSubscriptionRecord, payload: string, section: PushSection): Promise<void> {
    const options = {
      ttlSeconds: section.ttl ?? this.options.defaultTtlSeconds,
      urgency: section.urgency ?? 'normal',
      ...(section.topic === undefined ? {} : { topic: section.topic }),
    };
    let outcome: PushOutcome | undefined;
    for (let attempt = 1; attempt <= this.options.maxAttempts; attempt++) {
      const stop = this.#metrics.seconds.startTimer();
      outcome = await this.sender.send(sub, payload, options);
      stop();
      if (outcome.result !== 'retry' || attempt === this.options.maxAttempts) break;
      const delay = Math.max(backoffDelay(attempt, this.options.retryBaseMs, 30_000), outcome.retryAfterMs ?? 0);
      await new Promise((r) => setTimeout(r, Math.min(delay, 30_000)));
    }
    if (outcome === undefined) return;
    if (outcome.result === 'gone') {
      // The push service says this subscription is dead (unsubscribed, expired): forget it.
      await this.store.removeSubscription(userId, sub.id);
    } else if (outcome.result !== 'sent') {
      this.#logger.warn({ userId, subscription: sub.id, outcome }, 'push not delivered');
    }
    this.#metrics.deliveries.inc({ result: outcome.result === 'retry' ? 'retries_exhausted' : outcome.result });
  }

  #decide(decision: PushDecision): void {
    this.#metrics.decisions.inc({ decision });
  }
}
