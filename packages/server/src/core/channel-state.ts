/**
 * This node's view of one channel: its local subscribers and the last position it dispatched.
 * Publications arrive from the broker in offset order; if one is missing (a broker that dropped
 * a message while reconnecting), the state fetches the hole from history before going on, and
 * if history cannot fill it, every subscriber is told it lost its position. Never a silent gap.
 */
import type { Position } from '@herald/protocol';
import type { Broker, HistoryResult, PublicationRecord } from '../broker/broker.js';
import type { ConcurrencyLimit } from './concurrency-limit.js';
import { gatherWrites } from '../transports/direct-write.js';
import { Delivery } from './delivery.js';
import { OpenStreams } from './open-streams.js';
import { mergeRecovery } from './recovery.js';
import { newestStored, type ChannelSubscription, type QueueLimits } from './session.js';

export interface ChannelStateOwner {
  readonly broker: Broker;
  /** The hole fill holds live publications within this node's share of the queue bound (see `#hold`). */
  readonly limits: QueueLimits;
  /** Paces the history reads that fill holes, so a broker reconnect does not start them all at once. */
  readonly historyReads: ConcurrencyLimit;
  /** Every subscriber of the channel lost its position. */
  lostPositions(state: ChannelState): void;
}

/** Reads in a row that bring nothing new before a fill gives up on meeting what is held. */
const MAX_IDLE_FILLS = 2;

export class ChannelState {
  readonly name: string;
  readonly subscribers = new Set<ChannelSubscription>();
  /**
   * The subscribers that asked for join and leave pushes. Each join and leave visits only these:
   * visiting every subscriber made N joins cost N^2/2 steps (50 million for 10,000 subscribers).
   */
  readonly joinLeaveSubscribers = new Set<ChannelSubscription>();
  /** The channel's text streams still open, for subscribers that join mid-stream. */
  readonly streams = new OpenStreams();
  /** Resolves once the broker delivers this channel to the node. */
  readonly ready: Promise<void>;
  /** `ready` has resolved: a subscribe need not wait for it. */
  #receiving = false;
  #position: Position | undefined;
  /** Publications that arrived while a hole is being filled from history. */
  #held: PublicationRecord[] | undefined;
  #heldBytes = 0;
  /** The newest held publication dropped for the bound during this fill, if any. */
  #dropped: Position | undefined;
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
        this.#hold(record);
        return;
      }
      const last = this.#position;
      if (last !== undefined && record.epoch === last.epoch) {
        if (record.offset <= last.offset) return;
        if (record.offset !== last.offset + 1) {
          this.#held = [];
          this.#hold(record);
          void this.#fill(last);
          return;
        }
      }
    }
    this.#deliver(record);
  }

  /** Hands a publication that follows the last one (or is ephemeral) to every local subscriber. */
  #deliver(record: PublicationRecord): void {
    // A new epoch means the stream was reset; subscribers notice it by the epoch and resubscribe.
    if (record.offset !== 0) {
      this.#position = { offset: record.offset, epoch: record.epoch };
      this.streams.note(record);
    }
    const delivery = new Delivery(record);
    // The subscribers' writes leave by one native call per few hundred (direct-write.ts).
    gatherWrites(() => {
      for (const sub of this.subscribers) sub.session.deliver(delivery, sub);
    });
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
      if (sub.holding || sub.epoch === '') continue;
      if (lowest === undefined || sub.offset < lowest.offset) lowest = sub.position;
    }
    return lowest;
  }

  /**
   * Holds a publication that arrived during a fill, within a bound in bytes (the hub's queue
   * bound for the whole channel: a fill is a brief pause, and every subscriber shares what is
   * held). Past it, all held ones are dropped: they are in history, and the fill reads on.
   */
  #hold(record: PublicationRecord): void {
    const held = this.#held as PublicationRecord[];
    this.#heldBytes += record.json.length;
    if (this.#heldBytes > this.#owner.limits.maxQueueBytes) {
      this.#dropped = newestStored([record]) ?? newestStored(held) ?? this.#dropped;
      held.length = 0;
      this.#heldBytes = 0;
      return;
    }
    held.push(record);
  }

  /**
   * Reads from `from` until history meets what is held, in pages within the queue bound; then
   * dispatches the held ones. If history cannot serve the position, every subscriber is told.
   */
  async #fill(from: Position): Promise<void> {
    let position = from;
    let idle = 0;
    for (;;) {
      let history: HistoryResult | undefined;
      try {
        history = await this.#owner.historyReads.run(() =>
          this.#owner.broker.history(this.name, { since: position, maxBytes: this.#owner.limits.maxQueueBytes }),
        );
      } catch {
        history = undefined;
      }
      const held = this.#held ?? [];
      // Lossy: pub/sub dropped something already, and may drop more while this reads.
      const merged =
        history === undefined
          ? undefined
          : mergeRecovery(position, history, {
              records: held,
              lossy: true,
              ...(this.#dropped ? { dropped: this.#dropped } : {}),
            });
      if (merged?.recovered !== true || (merged.more && ++idle > MAX_IDLE_FILLS)) {
        this.#release();
        this.#position = undefined;
        this.#owner.lostPositions(this);
        for (const record of held) this.dispatch(record);
        return;
      }
      if (merged.publications.length > 0) idle = 0;
      for (const record of merged.publications) this.#deliver(record);
      if (!merged.more) {
        this.#release();
        for (const record of held) this.dispatch(record);
        return;
      }
      position = merged.position;
    }
  }

  #release(): void {
    this.#held = undefined;
    this.#heldBytes = 0;
    this.#dropped = undefined;
  }
}
