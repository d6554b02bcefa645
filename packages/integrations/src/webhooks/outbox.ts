/**
 * Where webhook events wait between their creation and their delivery. The dispatcher owns the
 * sending (signing, timeouts, backoff, dead letters); the outbox owns keeping events, bounding
 * them, handing each to one sender at a time, and taking an event back from a sender that died.
 *
 * Implementations (docs/integrations.md, "Delivery guarantees per broker"):
 *   memory  in this process (the embedded default): lost if the process crashes
 *   redis   a Stream with a consumer group shared by the nodes, plus a sorted set of retries
 *   nats    a JetStream work-queue stream with one durable pull consumer shared by the nodes
 * One conformance suite (test/outbox.test.ts) runs against each.
 */
import type { OutgoingEvent } from './events.js';

export interface Outbox {
  readonly name: string;
  /**
   * Whether an appended event outlives this process. A durable outbox keeps what is not
   * delivered when the dispatcher closes (another node, or this one restarted, sends it); a
   * volatile one hands it back from `close` to be dead-lettered.
   */
  readonly durable: boolean;
  /** Connects and creates what the outbox needs (idempotent across nodes). */
  start(): Promise<void>;
  /**
   * Stores `event` (durably, for a durable outbox, before this resolves). When the outbox holds
   * `capacity` events already, the oldest one not being sent (else the oldest of all) is removed
   * to make room and returned, for the caller to dead-letter with reason `queue_full`.
   */
  append(event: OutgoingEvent): Promise<OutgoingEvent[]>;
  /**
   * Up to `max` events due now, each now held by this node until its claim is settled. Waits up
   * to about `waitMs` when none is due (a durable outbox may return early, or after a little
   * more). Events held by a node that stopped answering are claimed again by another node once
   * they have been held for the claim timeout. `event.attempts` counts the attempts made before
   * this claim, including one a crash interrupted. Ends early when `signal` aborts.
   */
  claim(max: number, waitMs: number, signal: AbortSignal): AsyncIterable<Claim>;
  /** Retries that wait for their time become due now (a closing volatile outbox). */
  expedite(): void;
  /** Events waiting: ready to send or waiting for a retry (not those being sent). */
  size(): number | Promise<number>;
  /** Disconnects. Returns what a volatile outbox still held (a durable one keeps it: []). */
  close(): Promise<OutgoingEvent[]>;
}

/** One event held by this node. Settle it once: `ack`, or `retry`. */
export interface Claim {
  readonly event: OutgoingEvent;
  /** Delivered, or dead-lettered: the event leaves the outbox. */
  ack(): Promise<void>;
  /**
   * The attempt failed and may be retried: the event is due again after `delayMs`, on any node,
   * with its attempts counted (`event.attempts` already includes the failed attempt). A claim
   * that another node meanwhile acknowledged is not brought back.
   */
  retry(delayMs: number): Promise<void>;
}
