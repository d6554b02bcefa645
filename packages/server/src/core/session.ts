/**
 * A client connection as the core sees it, whatever its transport: identity, permissions,
 * subscriptions with their stream positions, and the outgoing-queue policy that protects the hub
 * from clients that stop reading (PROTOCOL.md section 8, guarantee 4).
 *
 * Transports and plugins see read-only views (`Session`, `Subscription`); the state behind them
 * is private to these classes and changed only by the hub.
 */
import { CloseCode, closeInfo, type ClientInfo, type DisconnectInfo, type Position } from '@herald/protocol';
import type { PublicationRecord } from '../broker/broker.js';
import type { Credentials } from './credentials.js';
import { Delivery } from './delivery.js';
import type { AppendWindows } from './append-window.js';
import type { Held } from './recovery.js';
import { rollUp } from './roll-up.js';
import type { HubStats, TransportKind } from './stats.js';

/** The pipe a session writes to. Transports translate; every decision is made here or in the hub. */
export interface SessionTransport {
  readonly kind: TransportKind;
  /** Bytes accepted for this client but not yet handed to the kernel. */
  bufferedBytes(): number;
  writePublication(delivery: Delivery, subscription: Subscription): void;
  writeJoinLeave(kind: 'join' | 'leave', channel: string, client: ClientInfo): void;
  /** The hub ended one subscription (the session goes on). */
  writeUnsubscribed(channel: string, code: number, reason: string): void;
  /**
   * The backend subscribed the session to `channel` (`POST /api/subscribe`, the token's `subs`):
   * tell the client, with the channel's position; its publications follow. A transport without
   * it takes no server-side subscriptions (long-poll: no lasting connection).
   */
  writeSubscribed?(channel: string, position: Position): void;
  /** Says why when the client can still take it, then closes. Called once. */
  end(info: DisconnectInfo): void;
}

/** A client's subscription to one channel, as transports and hooks see it. */
export interface Subscription {
  readonly channel: string;
  readonly session: Session;
  /** Whether the client asked for join and leave pushes. */
  readonly joinLeave: boolean;
  /** Whether this subscription counts in presence (long-poll waiters do not). */
  readonly present: boolean;
  /** The last publication this subscriber was given (or, before any, where it starts). */
  readonly offset: number;
  readonly epoch: string;
  /** How this subscriber appears in presence: the session's identity unless the subscribe set another. */
  clientInfo(): ClientInfo;
}

/** A client connection, as transports and hooks see it. */
export interface Session {
  readonly id: string;
  /** '' for an anonymous client. */
  readonly userId: string;
  readonly kind: TransportKind;
  readonly credentials: Credentials;
  /** When the session opened, epoch ms on the hub's clock. */
  readonly connectedAt: number;
  /** True once the session has ended; deliveries to it are ignored from then on. */
  readonly closed: boolean;
  readonly subscriptions: ReadonlyMap<string, Subscription>;
  clientInfo(): ClientInfo;
}

export interface QueueLimits {
  /**
   * The one bound on what the hub holds for a client, in bytes: past it the client is
   * disconnected with 4004, and answers, replay pages and held live publications stay within it.
   */
  readonly maxQueueBytes: number;
  /** Past this many buffered bytes ephemeral publications are dropped for the client. */
  readonly ephemeralDropBytes: number;
}

/** Callbacks a session needs from its hub; kept narrow so sessions stay testable alone. */
export interface SessionOwner {
  readonly stats: HubStats;
  readonly limits: QueueLimits;
  endSession(session: Session, info: DisconnectInfo): void;
  /** The session cannot follow the channel any more; the hub removes the subscription. */
  lostPosition(subscription: ChannelSubscription): void;
  /** The roll-up windows of text-stream appends; undefined when the window is off (0 ms). */
  readonly appendWindows: AppendWindows<ChannelSubscription> | undefined;
}

export class ChannelSubscription implements Subscription {
  readonly channel: string;
  readonly session: ClientSession;
  readonly joinLeave: boolean;
  readonly present: boolean;
  #offset = 0;
  #epoch = '';
  /** Live publications held while the answer (and any replay) is written; undefined once live. */
  #held: PublicationRecord[] | undefined = [];
  #heldBytes = 0;
  /** The newest held publication dropped for the bound, if any (see `hold`). */
  #dropped: Position | undefined;
  /** Text-stream appends accepted but not yet written: the roll-up window (append-window.ts). */
  #window: PublicationRecord[] | undefined;
  #windowBytes = 0;
  /** Set once the presence entry is written, so that ending the subscription removes it. */
  inPresence = false;
  /** Allowed by the subscribe hook rather than the credentials' patterns (a refresh keeps it). */
  granted = false;
  /** Made by the backend, not the client: a client `subscribe` to the channel takes it over. */
  server = false;
  readonly #member: { readonly userId?: string; readonly info?: unknown } | undefined;

  constructor(
    channel: string,
    session: ClientSession,
    joinLeave: boolean,
    present: boolean,
    member?: { readonly userId?: string; readonly info?: unknown },
  ) {
    this.channel = channel;
    this.session = session;
    this.joinLeave = joinLeave;
    this.present = present;
    this.#member = member;
  }

  clientInfo(): ClientInfo {
    const own = this.session.clientInfo();
    const member = this.#member;
    if (member === undefined) return own;
    const info = member.info === undefined ? own.info : member.info;
    const client = { clientId: own.clientId, userId: member.userId ?? own.userId };
    return info === undefined ? client : { ...client, info };
  }

  get offset(): number {
    return this.#offset;
  }

  get epoch(): string {
    return this.#epoch;
  }

  get position(): Position {
    return { offset: this.#offset, epoch: this.#epoch };
  }

  /** Whether live publications are held (the subscribe answer or a replay is being written). */
  get holding(): boolean {
    return this.#held !== undefined;
  }

  /** What was held so far (an overflow drops it all: see `hold`), for mergeRecovery. */
  get held(): Held {
    const records = this.#held ?? [];
    return this.#dropped === undefined ? { records } : { records, dropped: this.#dropped };
  }

  /** The last offset accepted for this subscriber: its position, or the newest append in its window. */
  get accepted(): number {
    return this.#window?.at(-1)?.offset ?? this.#offset;
  }

  /** Puts an append in the window; returns the bytes the window now holds. */
  queueAppend(record: PublicationRecord): number {
    (this.#window ??= []).push(record);
    return (this.#windowBytes += record.json.length);
  }

  /** Empties the window, handing back what it held. */
  takeWindow(): readonly PublicationRecord[] {
    const window = this.#window ?? [];
    this.#window = undefined;
    this.#windowBytes = 0;
    return window;
  }

  moveTo(position: Position): void {
    this.#offset = position.offset;
    this.#epoch = position.epoch;
  }

  /**
   * Holds a live publication until the subscription goes live. The held publications stay within
   * the queue bound: past it they are all dropped and holding starts over. Nothing is lost by
   * that: stored publications are in history, and the replay reads on until it meets what is
   * held (mergeRecovery reports the gap, the replay fills it); ephemeral ones may be dropped.
   */
  hold(record: PublicationRecord, maxBytes: number): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#heldBytes += record.json.length;
    if (this.#heldBytes > maxBytes) {
      this.#dropped = newestStored([record]) ?? newestStored(held) ?? this.#dropped;
      held.length = 0;
      this.#heldBytes = 0;
      return;
    }
    held.push(record);
  }

  /** Ends holding and returns what was held. */
  release(): readonly PublicationRecord[] {
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#heldBytes = 0;
    this.#dropped = undefined;
    return held;
  }
}

/** The position of the newest stored publication among `records` (ephemeral ones have none). */
export function newestStored(records: readonly PublicationRecord[]): Position | undefined {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i] as PublicationRecord;
    if (r.offset !== 0) return { offset: r.offset, epoch: r.epoch };
  }
  return undefined;
}

/** Bytes for `flatCopy`, reused: a Buffer per session would cost more than the copy itself. */
const FLAT_COPY_SCRATCH = Buffer.allocUnsafe(64);

/** `text` (latin1) as one flat string, copied through bytes. */
function flatCopy(text: string): string {
  if (text.length > FLAT_COPY_SCRATCH.length) return Buffer.from(text, 'latin1').toString('latin1');
  const length = FLAT_COPY_SCRATCH.write(text, 0, 'latin1');
  return FLAT_COPY_SCRATCH.toString('latin1', 0, length);
}

const SLOW_CONSUMER: DisconnectInfo = closeInfo(CloseCode.SlowConsumer);

export class ClientSession implements Session {
  readonly id: string;
  readonly transport: SessionTransport;
  readonly connectedAt: number;
  readonly #subscriptions = new Map<string, ChannelSubscription>();
  #credentials: Credentials;
  #closed = false;
  readonly #owner: SessionOwner;

  constructor(
    id: string,
    transport: SessionTransport,
    credentials: Credentials,
    owner: SessionOwner,
    connectedAt = Date.now(),
  ) {
    this.connectedAt = connectedAt;
    // A copy made from bytes is one flat string. `randomUUID()` builds its result by concatenation,
    // a tree of some twenty string pieces (about 600 bytes) that would live as long as the session.
    this.id = flatCopy(id);
    this.transport = transport;
    this.#credentials = credentials;
    this.#owner = owner;
  }

  get userId(): string {
    return this.#credentials.userId;
  }

  get kind(): TransportKind {
    return this.transport.kind;
  }

  get credentials(): Credentials {
    return this.#credentials;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get subscriptions(): ReadonlyMap<string, ChannelSubscription> {
    return this.#subscriptions;
  }

  clientInfo(): ClientInfo {
    const { userId, info } = this.#credentials;
    return info === undefined ? { clientId: this.id, userId } : { clientId: this.id, userId, info };
  }

  /** Hub only: the token was refreshed. */
  replaceCredentials(credentials: Credentials): void {
    this.#credentials = credentials;
  }

  /** Hub only: marks the session ended and hands back its subscriptions to detach. */
  close(): ChannelSubscription[] {
    this.#closed = true;
    const subs = [...this.#subscriptions.values()];
    this.#subscriptions.clear();
    return subs;
  }

  addSubscription(sub: ChannelSubscription): void {
    this.#subscriptions.set(sub.channel, sub);
  }

  /** Removes `sub` if it is still this session's subscription to its channel; true when it was. */
  removeSubscription(sub: ChannelSubscription): boolean {
    if (this.#subscriptions.get(sub.channel) !== sub) return false;
    this.#subscriptions.delete(sub.channel);
    return true;
  }

  /**
   * The per-subscriber step of fan-out: order and duplicate checks, the queue bound, one write.
   * Stored publications must follow the subscriber's position exactly; anything else is either a
   * duplicate (dropped) or a hole, which ends the subscription loudly instead of hiding a gap.
   */
  deliver(delivery: Delivery, sub: ChannelSubscription): void {
    if (this.#closed) return;
    const record = delivery.record;
    const owner = this.#owner;
    if (sub.holding) return sub.hold(record, owner.limits.maxQueueBytes);
    if (record.offset === 0) {
      if (this.transport.bufferedBytes() > owner.limits.ephemeralDropBytes) {
        // Ephemeral publications are the first thing a slow client loses (guarantee 4).
        owner.stats.ephemeralDropped++;
        return;
      }
      return this.#write(delivery, sub);
    }
    // Order is checked against what was accepted, the window included.
    const accepted = sub.accepted;
    if (record.epoch === sub.epoch && record.offset !== accepted + 1) {
      if (record.offset <= accepted) return;
      return owner.lostPosition(sub);
    }
    if (record.epoch !== sub.epoch) return owner.lostPosition(sub);
    const windows = owner.appendWindows;
    if (windows !== undefined && delivery.streamPiece) {
      // An append waits for the window's tick; a window past the queue bound flushes at once.
      if (sub.queueAppend(record) <= owner.limits.maxQueueBytes) return windows.add(sub);
      windows.delete(sub);
      return this.flushWindow(sub);
    }
    // Anything else is never delayed, and never overtakes the appends before it.
    if (sub.accepted !== sub.offset) {
      windows?.delete(sub);
      this.flushWindow(sub);
      if (this.#closed || this.#subscriptions.get(sub.channel) !== sub) return;
    }
    this.#deliverStored(delivery, sub);
  }

  /** Writes what `sub`'s roll-up window holds, rolled up (append-window.ts). */
  flushWindow(sub: ChannelSubscription): void {
    const window = sub.takeWindow();
    if (this.#closed || this.#subscriptions.get(sub.channel) !== sub) return;
    for (const record of rollUp(window)) {
      this.#deliverStored(new Delivery(record), sub);
      if (this.#closed) return;
    }
  }

  /** The queue bound, then the write; the position moves to the publication's offset. */
  #deliverStored(delivery: Delivery, sub: ChannelSubscription): void {
    const owner = this.#owner;
    if (this.transport.bufferedBytes() > owner.limits.maxQueueBytes) {
      owner.stats.slowConsumerDisconnects++;
      return owner.endSession(this, SLOW_CONSUMER);
    }
    sub.moveTo(delivery.record);
    this.#write(delivery, sub);
  }

  #write(delivery: Delivery, sub: ChannelSubscription): void {
    this.transport.writePublication(delivery, sub);
    this.#owner.stats.delivered(this.transport.kind);
  }

  /**
   * Writes a replayed publication (one the subscriber missed, read from history). The replay
   * paces itself by the queue bound, so this never counts as slow; the position moves first, so
   * a transport that writes the position with the publication (SSE's cursor) includes it.
   * `herald_deliveries_total` counts live fan-out only, so replays are not counted there.
   */
  replay(record: PublicationRecord, sub: ChannelSubscription): void {
    if (this.#closed) return;
    // A joiner's rolled-up streams (hub.ts) come from before the position it was given: never back.
    if (record.epoch !== sub.epoch || record.offset > sub.offset) sub.moveTo(record);
    this.transport.writePublication(new Delivery(record), sub);
  }

  /** Delivers what was held during the answer and replay, then goes live. */
  activate(sub: ChannelSubscription): void {
    for (const record of sub.release()) this.deliver(new Delivery(record), sub);
  }
}
