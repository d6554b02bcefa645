/**
 * A client connection as the core sees it, whatever its transport: identity, permissions,
 * subscriptions with their stream positions, and the outgoing-queue policy that protects the hub
 * from clients that stop reading (PROTOCOL.md section 8, guarantee 4).
 */
import { CloseCode, type ClientInfo, type DisconnectInfo } from '@herald/protocol';
import type { PublicationRecord } from '../broker/broker.js';
import type { Credentials } from './credentials.js';
import type { Delivery } from './delivery.js';
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
  /** Says why when the client can still take it, then closes. Called once. */
  end(info: DisconnectInfo): void;
}

export interface QueueLimits {
  /** Past this many buffered bytes the client is disconnected with 4004. */
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
  lostPosition(subscription: Subscription): void;
}

export class Subscription {
  readonly channel: string;
  readonly session: Session;
  readonly joinLeave: boolean;
  /** The last publication this subscriber was given (or, before any, where it starts). */
  offset = 0;
  epoch = '';
  /** Live publications held while the subscribe answer is being prepared; undefined once live. */
  pending: PublicationRecord[] | undefined = [];
  /** Whether this subscription counts in presence. */
  readonly present: boolean;
  /** Set once the presence entry is written, so that ending the subscription removes it. */
  inPresence = false;

  constructor(channel: string, session: Session, joinLeave: boolean, present: boolean) {
    this.channel = channel;
    this.session = session;
    this.joinLeave = joinLeave;
    this.present = present;
  }
}

/** Bytes for `flatCopy`, reused: a Buffer per session would cost more than the copy itself. */
const FLAT_COPY_SCRATCH = Buffer.allocUnsafe(64);

/** `text` (latin1) as one flat string, copied through bytes. */
function flatCopy(text: string): string {
  if (text.length > FLAT_COPY_SCRATCH.length) return Buffer.from(text, 'latin1').toString('latin1');
  const length = FLAT_COPY_SCRATCH.write(text, 0, 'latin1');
  return FLAT_COPY_SCRATCH.toString('latin1', 0, length);
}

/** Live publications held per recovering subscription before the subscriber counts as too slow. */
const MAX_PENDING = 10_000;

const SLOW_CONSUMER: DisconnectInfo = { code: CloseCode.SlowConsumer, reason: 'slow consumer', reconnect: true };

export class Session {
  readonly id: string;
  readonly transport: SessionTransport;
  readonly subscriptions = new Map<string, Subscription>();
  credentials: Credentials;
  /** Set once the session has ended; deliveries to it are ignored from then on. */
  closed = false;
  readonly #owner: SessionOwner;

  constructor(id: string, transport: SessionTransport, credentials: Credentials, owner: SessionOwner) {
    // A copy made from bytes is one flat string. `randomUUID()` builds its result by concatenation,
    // a tree of some twenty string pieces (about 600 bytes) that would live as long as the session.
    this.id = flatCopy(id);
    this.transport = transport;
    this.credentials = credentials;
    this.#owner = owner;
  }

  get userId(): string {
    return this.credentials.userId;
  }

  clientInfo(): ClientInfo {
    const { userId, info } = this.credentials;
    return info === undefined ? { clientId: this.id, userId } : { clientId: this.id, userId, info };
  }

  /**
   * The per-subscriber step of fan-out: order and duplicate checks, the queue bound, one write.
   * Stored publications must follow the subscriber's position exactly; anything else is either a
   * duplicate (dropped) or a hole, which ends the subscription loudly instead of hiding a gap.
   */
  deliver(delivery: Delivery, sub: Subscription): void {
    if (this.closed) return;
    const record = delivery.record;
    if (sub.pending !== undefined) {
      if (sub.pending.length >= MAX_PENDING) return this.#owner.endSession(this, SLOW_CONSUMER);
      sub.pending.push(record);
      return;
    }
    const stats = this.#owner.stats;
    const buffered = this.transport.bufferedBytes();
    if (record.offset !== 0) {
      if (record.epoch === sub.epoch && record.offset !== sub.offset + 1) {
        if (record.offset <= sub.offset) return;
        return this.#owner.lostPosition(sub);
      }
      if (record.epoch !== sub.epoch) return this.#owner.lostPosition(sub);
      if (buffered > this.#owner.limits.maxQueueBytes) {
        stats.slowConsumerDisconnects++;
        return this.#owner.endSession(this, SLOW_CONSUMER);
      }
      sub.offset = record.offset;
    } else if (buffered > this.#owner.limits.ephemeralDropBytes) {
      // Ephemeral publications are the first thing a slow client loses (guarantee 4).
      stats.ephemeralDropped++;
      return;
    }
    this.transport.writePublication(delivery, sub);
    stats.deliveries[this.transport.kind]++;
  }

  /** Delivers what was held during the subscribe answer, then goes live. */
  activate(sub: Subscription, wrap: (record: PublicationRecord) => Delivery): void {
    const held = sub.pending;
    sub.pending = undefined;
    if (held === undefined) return;
    for (const record of held) this.deliver(wrap(record), sub);
  }
}
