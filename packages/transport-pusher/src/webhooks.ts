/**
 * Webhooks in Pusher's format, on Herald's webhook dispatcher (@herald/integrations: signed
 * POSTs, retries with backoff, a bounded outbox, a dead-letter log): a body
 * `{"time_ms", "events": [{"name", "channel", ...}]}`, headers `X-Pusher-Key` and
 * `X-Pusher-Signature` (HMAC-SHA256 of the body with the app's secret).
 *
 * Events are batched per app for `BATCH_MS` (at most `MAX_BATCH` to a body). Channel and member
 * transitions are read from the cluster-wide presence store on the node where the change
 * happened, `SETTLE_MS` after it (so a reconnect within that time reports nothing): occupied /
 * vacated when a channel's subscriber count goes from or to zero, member_added / removed when a
 * user's first connection joins or last leaves. Two nodes changing one channel at the same
 * moment may each report it: receivers should treat these events as idempotent (Pusher's own
 * advice, since its webhooks may also repeat).
 *
 * The same settled count is what subscribers of an app with `subscriptionCount` get as
 * `pusher_internal:subscription_count` (public and private channels, as Pusher sends it).
 */
import { DeadLetterLog, WebhookDispatcher, type OutgoingEvent } from '@herald/integrations';
import type { Credentials, Hub, PublicationRecord, Subscription, TransportContext } from '@herald/server';
import { randomUUID } from 'node:crypto';
import type { PusherApp, PusherApps } from './apps.js';
import { appIdOf, appPrefix, channelType, pusherChannel } from './channels.js';
import { webhookSignature } from './signatures.js';

export const PUSHER_WEBHOOK_EVENTS = [
  'channel_occupied',
  'channel_vacated',
  'member_added',
  'member_removed',
  'client_event',
  'cache_miss',
  'subscription_count',
] as const;
export type PusherWebhookEvent = (typeof PUSHER_WEBHOOK_EVENTS)[number];

/** How long events are gathered into one body, and how many one body holds at most. */
const BATCH_MS = 250;
const MAX_BATCH = 100;
/** How long after a subscribe or unsubscribe the channel's state is read (debounce). */
const SETTLE_MS = 1_000;

type PusherEvent = { readonly name: PusherWebhookEvent; readonly channel: string } & Record<string, unknown>;

interface AppHooks {
  readonly app: PusherApp;
  readonly events: ReadonlySet<string>;
  /** Undefined for an app with `subscriptionCount` and no webhooks. */
  readonly dispatcher: WebhookDispatcher | undefined;
  pending: PusherEvent[];
  timer: NodeJS.Timeout | undefined;
  /** What was last reported per channel on this node, so a transition is reported once. */
  readonly occupied: Map<string, boolean>;
  readonly members: Map<string, Set<string>>;
  readonly settling: Map<string, NodeJS.Timeout>;
}

export class PusherWebhooks {
  readonly #hub: Hub;
  readonly #apps = new Map<string, AppHooks>();
  #removeHooks: (() => void) | undefined;

  constructor(hub: Hub, apps: PusherApps, logger: TransportContext['logger']) {
    this.#hub = hub;
    for (const app of apps.all()) {
      const webhooks = app.webhooks;
      if (webhooks === undefined && app.subscriptionCount !== true) continue;
      const dispatcher =
        webhooks === undefined
          ? undefined
          : new WebhookDispatcher({
              url: webhooks.url,
              secrets: [app.secret],
              timeoutMs: 10_000,
              maxAttempts: 8,
              retryBaseMs: 500,
              retryMaxMs: 60_000,
              queueSize: 10_000,
              concurrency: 4,
              deadLetter: new DeadLetterLog(undefined, logger),
              logger,
              signatureHeaders: (body) => ({
                'X-Pusher-Key': app.key,
                'X-Pusher-Signature': webhookSignature(app, body),
              }),
            });
      this.#apps.set(app.id, {
        app,
        events: new Set(webhooks === undefined ? [] : (webhooks.events ?? PUSHER_WEBHOOK_EVENTS)),
        dispatcher,
        pending: [],
        timer: undefined,
        occupied: new Map(),
        members: new Map(),
        settling: new Map(),
      });
    }
    if (this.#apps.size === 0) return;
    this.#removeHooks = hub.addHooks({
      subscribed: (sub) => this.#changed(sub),
      unsubscribed: (sub) => this.#changed(sub),
      published: (record, publisher) => this.#published(record, publisher),
    });
  }

  cacheMiss(app: PusherApp, channel: string): void {
    this.#add(this.#apps.get(app.id), { name: 'cache_miss', channel });
  }

  async close(): Promise<void> {
    this.#removeHooks?.();
    for (const hooks of this.#apps.values()) {
      for (const timer of hooks.settling.values()) clearTimeout(timer);
      this.#flush(hooks);
      await hooks.dispatcher?.close();
    }
  }

  #changed(sub: Subscription): void {
    if (!sub.present) return;
    const appId = appIdOf(sub.channel);
    const hooks = appId === undefined ? undefined : this.#apps.get(appId);
    if (hooks === undefined || hooks.settling.has(sub.channel)) return;
    const timer = setTimeout(() => {
      hooks.settling.delete(sub.channel);
      this.#settle(hooks, sub.channel).catch(() => undefined);
    }, SETTLE_MS);
    timer.unref();
    hooks.settling.set(sub.channel, timer);
  }

  /** Compares the channel's cluster-wide presence with what this node last reported. */
  async #settle(hooks: AppHooks, channel: string): Promise<void> {
    const name = pusherChannel(appPrefix(hooks.app.id), channel);
    if (name === undefined || channelType(name) === 'user') return;
    const clients = await this.#hub.presence(channel);
    const occupied = clients.length > 0;
    if ((hooks.occupied.get(channel) ?? false) !== occupied) {
      this.#add(hooks, { name: occupied ? 'channel_occupied' : 'channel_vacated', channel: name });
    }
    if (occupied) hooks.occupied.set(channel, true);
    else hooks.occupied.delete(channel);
    if (channelType(name) === 'presence') {
      const now = new Set(clients.map((c) => c.userId).filter((id) => id !== ''));
      const before = hooks.members.get(channel) ?? new Set<string>();
      for (const id of now) if (!before.has(id)) this.#add(hooks, { name: 'member_added', channel: name, user_id: id });
      for (const id of before)
        if (!now.has(id)) this.#add(hooks, { name: 'member_removed', channel: name, user_id: id });
      if (now.size > 0) hooks.members.set(channel, now);
      else hooks.members.delete(channel);
    } else {
      this.#add(hooks, { name: 'subscription_count', channel: name, subscription_count: clients.length });
      if (hooks.app.subscriptionCount === true && occupied) {
        // pusher-js shows it as `channel.subscriptionCount` and the `pusher:subscription_count` event.
        await this.#hub.publish({
          channel,
          event: 'pusher_internal:subscription_count',
          data: { subscription_count: clients.length },
          ephemeral: true,
        });
      }
    }
  }

  #published(record: PublicationRecord, publisher: Credentials | undefined): void {
    if (record.event === undefined || !record.event.startsWith('client-')) return;
    const appId = appIdOf(record.channel);
    const hooks = appId === undefined ? undefined : this.#apps.get(appId);
    const origin = (publisher?.info as { pusher?: { socket_id?: string; user_id?: string } } | undefined)?.pusher;
    if (hooks === undefined || origin?.socket_id === undefined) return;
    const name = pusherChannel(appPrefix(hooks.app.id), record.channel) as string;
    const data = (JSON.parse(record.json) as { data?: unknown }).data;
    this.#add(hooks, {
      name: 'client_event',
      channel: name,
      event: record.event,
      data: typeof data === 'string' ? data : JSON.stringify(data),
      socket_id: origin.socket_id,
      ...(origin.user_id === undefined ? {} : { user_id: origin.user_id }),
    });
  }

  #add(hooks: AppHooks | undefined, event: PusherEvent): void {
    if (hooks === undefined || !hooks.events.has(event.name)) return;
    hooks.pending.push(event);
    if (hooks.pending.length >= MAX_BATCH) return this.#flush(hooks);
    hooks.timer ??= setTimeout(() => this.#flush(hooks), BATCH_MS);
  }

  #flush(hooks: AppHooks): void {
    clearTimeout(hooks.timer);
    hooks.timer = undefined;
    if (hooks.pending.length === 0) return;
    const now = Date.now();
    const body = JSON.stringify({ time_ms: now, events: hooks.pending });
    hooks.pending = [];
    const event: OutgoingEvent = { id: randomUUID(), type: 'pusher', createdAt: now, body, attempts: 0 };
    void hooks.dispatcher?.enqueue(event);
  }
}
