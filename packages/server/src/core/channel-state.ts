/**
 * This node's view of one channel: its local subscribers and the last position it dispatched.
 * Publications arrive from the broker in offset order; if one is missing (a broker that dropped
 * a message while reconnecting), the state fetches the hole from history before going on, and
 * if history cannot fill it, every subscriber is told it lost its position. Never a silent gap.
 */
import type { Position } from '@herald/protocol';
import type { Broker, PublicationRecord } from '../broker/broker.js';
import type { ConcurrencyLimit } from './concurrency-limit.js';
import { Delivery } from './delivery.js';
import type { Subscription } from './session.js';

export interface ChannelStateOwner {
  readonly broker: Broker;
  /** Paces the history reads that fill holes, so a broker reconnect does not start them all at once. */
  readonly historyReads: ConcurrencyLimit;
  /** Every subscriber of the channel lost its position. */
  lostPositions(state: ChannelState): void;
}

export class ChannelState {
  readonly name: string;
  readonly subscribers = new Set<Subscription>();
  /**
   * The subscribers that asked for join and leave pushes. Each join and leave visits only these:
   * visiting every subscriber made N joins cost N^2/2 steps (50 million for 10,000 subscribers).
   */
  readonly joinLeaveSubscribers = new Set<Subscription>();
  /** Resolves once the broker delivers this channel to the node. */
  readonly ready: Promise<void>;
  /** `ready` has resolved: a subscribe need not wait for it. */
  #receiving = false;
  #position: Position | undefined;
  /** Publications that arrived while a hole is being filled from history. */
  #held: PublicationRecord[] | undefined;
  readonly #owner: ChannelStateOwner;

  constructor(name: string, owner: ChannelStateOwner) {
    this.name = name;
    this.#owner = owner;
    this.ready = owner.broker.subscribe(name);
    this.ready.then(
      () => {
        this.#receiving = true;
      },
      () => undefined,
    );
  }

  get receiving(): boolean {
    return this.#receiving;
  }

  get idle(): boolean {
    return this.subscribers.size === 0;
  }

  dispatch(record: PublicationRecord): void {
    if (record.offset !== 0) {
      if (this.#held !== undefined) {
        this.#held.push(record);
        return;
      }
      const last = this.#position;
      if (last !== undefined && record.epoch === last.epoch) {
        if (record.offset <= last.offset) return;
        if (record.offset !== last.offset + 1) {
          this.#held = [record];
          void this.#fill(last);
          return;
        }
      }
      // A new epoch means the stream was reset; subscribers notice it by the epoch and resubscribe.
      this.#position = { offset: record.offset, epoch: record.epoch };
    }
    const delivery = new Delivery(record);
    for (const sub of this.subscribers) sub.session.deliver(delivery, sub);
  }

  /**
   * The broker receives again after losing its connection: what pub/sub dropped meanwhile is
   * fetched from history like any hole, from the last position dispatched (before any, the lowest
   * subscriber's). If history cannot serve it (the broker lost the stream, a new epoch), every
   * subscriber is told it lost its position: never a silent gap.
   */
  resync(): void {
    if (this.#held !== undefined) return;
    const from = this.#position ?? this.#lowestSubscriberPosition();
    if (from === undefined) return;
    this.#held = [];
    void this.#fill(from);
  }

  #lowestSubscriberPosition(): Position | undefined {
    let lowest: Position | undefined;
    for (const sub of this.subscribers) {
      if (sub.pending !== undefined || sub.epoch === '') continue;
      if (lowest === undefined || sub.offset < lowest.offset) lowest = { offset: sub.offset, epoch: sub.epoch };
    }
    return lowest;
  }

  async #fill(from: Position): Promise<void> {
    let missing: readonly PublicationRecord[] | undefined;
    try {
      const history = await this.#owner.historyReads.run(() => this.#owner.broker.history(this.name, { since: from }));
      if (history.recovered === true) missing = history.publications;
    } catch {
      missing = undefined;
    }
    const held = this.#held ?? [];
    this.#held = undefined;
    if (missing === undefined) {
      this.#position = undefined;
      this.#owner.lostPositions(this);
    } else {
      for (const record of missing) this.dispatch(record);
    }
    for (const record of held) this.dispatch(record);
  }
}
