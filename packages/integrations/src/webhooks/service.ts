/**
 * Turns what happens in the hub into webhook events: cluster-wide presence transitions from the
 * connection tracker, and client publications from the hub's `published` hook (publications made
 * by the backend itself are not echoed back to it).
 */
import type { ChannelMatcher } from '@herald/protocol';
import type { Credentials, Hub, PublicationRecord } from '@herald/server';
import type { Transition } from '../presence/connection-registry.js';
import type { ConnectionTracker } from '../presence/tracker.js';
import type { WebhookDispatcher } from './dispatcher.js';
import { createEvent, type WebhookEventType } from './events.js';

export interface WebhookFilter {
  readonly events: ReadonlySet<WebhookEventType>;
  /** Channels whose `channel.*` and `publication` events are sent. */
  readonly channels: ChannelMatcher;
}

const TRANSITION_TYPES = {
  user: { up: 'user.online', down: 'user.offline' },
  channel: { up: 'channel.occupied', down: 'channel.vacated' },
} as const;

export class WebhookService {
  readonly dispatcher: WebhookDispatcher;
  readonly #filter: WebhookFilter;
  #removeHooks: (() => void) | undefined;

  constructor(dispatcher: WebhookDispatcher, filter: WebhookFilter) {
    this.dispatcher = dispatcher;
    this.#filter = filter;
  }

  /** Whether any presence event is wanted (the tracker is needed only then, or for push). */
  get wantsPresence(): boolean {
    return [...this.#filter.events].some((t) => t !== 'publication');
  }

  attach(hub: Hub, tracker: ConnectionTracker | undefined): void {
    tracker?.onTransition((t) => this.#transition(t));
    if (this.#filter.events.has('publication')) {
      this.#removeHooks = hub.addHooks({ published: (record, publisher) => this.#published(record, publisher) });
    }
  }

  detach(): void {
    this.#removeHooks?.();
  }

  #transition(t: Transition): void {
    const type = TRANSITION_TYPES[t.kind][t.state];
    if (!this.#filter.events.has(type)) return;
    if (t.kind === 'channel' && !this.#filter.channels(t.id)) return;
    const data = t.kind === 'user' ? { userId: t.id } : { channel: t.id };
    void this.dispatcher.enqueue(createEvent(type, JSON.stringify(data), t.at));
  }

  #published(record: PublicationRecord, publisher: Credentials | undefined): void {
    if (publisher === undefined || !this.#filter.channels(record.channel)) return;
    const who =
      `{"userId":${JSON.stringify(publisher.userId)}` +
      (publisher.infoJson === undefined ? '' : `,"info":${publisher.infoJson}`) +
      '}';
    void this.dispatcher.enqueue(createEvent('publication', `{"publication":${record.json},"publisher":${who}}`));
  }
}
