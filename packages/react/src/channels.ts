/**
 * One shared subscription per channel for all the components of a provider, counted by holders.
 * The SDK allows one subscription per channel per client (`already_subscribed`), and StrictMode
 * runs every effect twice (setup, cleanup, setup): the last holder's release waits one task
 * before it unsubscribes, so a remount in the same commit finds the subscription still there and
 * nothing is unsubscribed, resubscribed or delivered twice.
 */
import type {
  ClientInfo,
  Herald,
  Position,
  Publication,
  RecoveredEvent,
  Subscription,
  SubscriptionState,
} from '@herald/client';
import type { HeraldClientError } from '@herald/client';

export interface ChannelListener {
  publication?(publication: Publication): void;
  recovered?(event: RecoveredEvent): void;
  state?(state: SubscriptionState): void;
  join?(client: ClientInfo): void;
  leave?(client: ClientInfo): void;
  error?(error: HeraldClientError): void;
}

interface Entry {
  readonly name: string;
  sub: Subscription;
  /** Publications of history still to replay once the subscription knows its position (0: none). */
  rewind: number;
  joinLeave: boolean;
  readonly listeners: Set<ChannelListener>;
  offs: Array<() => void>;
  releaseTimer: ReturnType<typeof setTimeout> | undefined;
}

export class Channels {
  readonly #client: Herald;
  readonly #entries = new Map<string, Entry>();

  constructor(client: Herald) {
    this.#client = client;
  }

  /**
   * Holds `name` for `listener`; the returned function lets go. `joinLeave` asks for join/leave
   * events; `rewind` opens with up to that many publications from the channel's history, when this
   * call is the one that starts following the channel.
   */
  acquire(name: string, listener: ChannelListener, joinLeave = false, rewind = 0): () => void {
    let entry = this.#entries.get(name);
    if (entry === undefined) {
      const sub = this.#client.subscribe(name, { joinLeave });
      entry = { name, sub, rewind, joinLeave, listeners: new Set(), offs: [], releaseTimer: undefined };
      this.#entries.set(name, entry);
      this.#wire(entry);
    } else {
      clearTimeout(entry.releaseTimer);
      entry.releaseTimer = undefined;
      if (joinLeave && !entry.joinLeave) {
        // Join/leave events are chosen at subscribe time: subscribe again with them, from the
        // position reached, so the resume delivers what was published in between (no gap, no duplicate).
        entry.joinLeave = true;
        this.#resubscribe(entry, entry.sub.position);
      }
    }
    entry.listeners.add(listener);
    const held = entry;
    return () => {
      held.listeners.delete(listener);
      if (held.listeners.size > 0 || held.releaseTimer !== undefined) return;
      held.releaseTimer = setTimeout(() => {
        if (held.listeners.size > 0 || this.#entries.get(name) !== held) return;
        this.#entries.delete(name);
        for (const off of held.offs) off();
        held.sub.unsubscribe();
      }, 0);
    };
  }

  /** The channel's subscription state now (`subscribing` before anyone holds it). */
  state(name: string): SubscriptionState {
    return this.#entries.get(name)?.sub.state ?? 'subscribing';
  }

  #wire(entry: Entry): void {
    const each = <K extends keyof ChannelListener>(key: K) =>
      ((value: never) => {
        for (const l of [...entry.listeners]) (l[key] as ((v: never) => void) | undefined)?.(value);
      }) as never;
    const sub = entry.sub;
    const state = each('state') as (s: SubscriptionState) => void;
    entry.offs = [
      sub.on('publication', each('publication')),
      sub.on('recovered', each('recovered')),
      sub.on('state', (s) => (s === 'subscribed' && this.#rewound(entry) ? undefined : state(s))),
      sub.on('join', each('join')),
      sub.on('leave', each('leave')),
      sub.on('error', each('error')),
    ];
  }

  /**
   * Subscribed from "now" with a rewind to do: the position is known, so subscribe again from
   * `rewind` publications before it; the hub replays them from history, then goes live. Done in the
   * `subscribed` event itself, before any publication of the first subscription, so none is
   * delivered twice. True when it resubscribed (the listeners hear the new subscription's states).
   */
  #rewound(entry: Entry): boolean {
    const position = entry.sub.position;
    const rewind = entry.rewind;
    entry.rewind = 0;
    if (rewind <= 0 || position === undefined || position.offset <= 0) return false;
    this.#resubscribe(entry, { offset: Math.max(0, position.offset - rewind), epoch: position.epoch });
    return true;
  }

  #resubscribe(entry: Entry, since: Position | undefined): void {
    for (const off of entry.offs) off();
    entry.sub.unsubscribe();
    entry.sub = this.#client.subscribe(entry.name, {
      joinLeave: entry.joinLeave,
      ...(since === undefined ? {} : { since }),
    });
    this.#wire(entry);
  }
}
