/**
 * The embedded broker: history, offsets and fan-out inside one process. Its epochs are random
 * per stream, so a restarted hub tells resuming clients `recovered: false` instead of pretending
 * that the offsets of a lost stream still mean something.
 */
import { randomBytes } from 'node:crypto';
import { publicationJson } from '@herald/protocol';
import type { Position } from '@herald/protocol';
import {
  IDEMPOTENCY_WINDOW_MS,
  type Broker,
  type BrokerEvents,
  type NodeReplies,
  type NodeRequest,
  type ControlMessage,
  type HistoryLimits,
  type HistoryQuery,
  type HistoryResult,
  type PublicationRecord,
  type PublishDraft,
  type PublishResult,
  TopConflictError,
} from './broker.js';
import { MemoryMetadata } from './memory-metadata.js';
import { isRecoverable } from '../core/recovery.js';
import { pageWithin } from './page.js';

export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

interface Stream {
  readonly epoch: string;
  top: number;
  /**
   * Retained publications, oldest first, from index `head` on, with the time each was stored
   * (`storedAt`, in step). Trimming moves `head` forward and compacts now and then, so dropping
   * the oldest publication costs nothing per publish (a `splice(0, 1)` would move them all).
   */
  records: PublicationRecord[];
  storedAt: number[];
  head: number;
  lastPublishAt: number;
}

/** Compact a stream's arrays once this many dropped entries lead them (and they are half of it). */
const COMPACT_AFTER = 1024;

export interface MemoryBrokerOptions extends HistoryLimits {
  /** Seconds an idle stream's offset and epoch are remembered after its history is empty. */
  readonly streamMetaTtlSeconds?: number;
  readonly now?: () => number;
}

const SWEEP_INTERVAL_MS = 30_000;

export class MemoryBroker implements Broker {
  readonly name = 'memory';
  readonly metadata = new MemoryMetadata();
  readonly #options: MemoryBrokerOptions;
  readonly #now: () => number;
  readonly #streams = new Map<string, Stream>();
  readonly #subscribed = new Set<string>();
  readonly #idempotency = new Map<string, { record: PublicationRecord; expiresAt: number }>();
  #events: BrokerEvents | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryBrokerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get ready(): boolean {
    return this.#events !== undefined;
  }

  async start(events: BrokerEvents): Promise<void> {
    this.#events = events;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#events = undefined;
  }

  async publish(draft: PublishDraft): Promise<PublishResult> {
    const events = this.#requireStarted();
    const now = this.#now();
    const key = draft.idempotencyKey === undefined ? undefined : `${draft.channel}\u0000${draft.idempotencyKey}`;
    if (key !== undefined) {
      const seen = this.#idempotency.get(key);
      if (seen && seen.expiresAt > now) return { record: seen.record, duplicate: true };
    }
    let record: PublicationRecord;
    if (draft.ephemeral) {
      record = { channel: draft.channel, offset: 0, epoch: '', event: draft.event, json: publicationJson(draft) };
    } else {
      const stream = this.#stream(draft.channel, now);
      const expected = draft.expectedTop;
      if (expected !== undefined && (expected.offset !== stream.top || expected.epoch !== stream.epoch)) {
        throw new TopConflictError(draft.channel);
      }
      const offset = stream.top + 1;
      const epoch = stream.epoch;
      const { channel, dataJson, event, ts, infoJson, streamJson } = draft;
      const json = publicationJson({ channel, offset, epoch, dataJson, event, ts, infoJson, streamJson });
      record = { channel, offset, epoch, event, json };
      stream.top = offset;
      stream.lastPublishAt = now;
      stream.records.push(record);
      stream.storedAt.push(now);
      this.#trim(stream, now);
    }
    if (key !== undefined) this.#idempotency.set(key, { record, expiresAt: now + IDEMPOTENCY_WINDOW_MS });
    // Stored first, then fanned out, in the same synchronous step: per-channel order is history order.
    if (this.#subscribed.has(draft.channel)) events.publication(record);
    return { record, duplicate: false };
  }

  async subscribe(channel: string): Promise<void> {
    this.#subscribed.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#subscribed.delete(channel);
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    return this.historyNow(channel, query);
  }

  historyNow(channel: string, query: HistoryQuery): HistoryResult {
    const now = this.#now();
    const stream = this.#streams.get(channel);
    if (stream === undefined) {
      // An unknown stream has a fresh epoch: a position from a lost stream cannot match it.
      const top: Position = { offset: 0, epoch: this.#stream(channel, now).epoch };
      return query.since ? { publications: [], top, recovered: false } : { publications: [], top };
    }
    this.#trim(stream, now);
    const top: Position = { offset: stream.top, epoch: stream.epoch };
    const { records, head } = stream;
    const oldest = records[head]?.offset ?? stream.top + 1;
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    if (query.since !== undefined) {
      if (!isRecoverable(query.since, { epoch: stream.epoch, top: stream.top, oldest })) {
        return { publications: [], top, recovered: false };
      }
      const start = head + query.since.offset + 1 - oldest;
      const end = limit === Number.POSITIVE_INFINITY ? records.length : Math.min(records.length, start + limit);
      return { publications: pageWithin(records.slice(start, end), query.maxBytes), top, recovered: true };
    }
    if (limit <= 0) return { publications: [], top };
    const latest = records.slice(Math.max(head, records.length - limit));
    return { publications: pageWithin(latest, query.maxBytes, true), top };
  }

  async broadcast(message: ControlMessage): Promise<void> {
    const events = this.#requireStarted();
    if (message.kind === 'disconnect_user' || this.#subscribed.has(message.channel)) events.control(message);
  }

  /** The only node: its own answer, or `null` when it has no handler or the handler failed. */
  async request(message: NodeRequest): Promise<NodeReplies> {
    const events = this.#requireStarted();
    const answer = events.request === undefined ? null : await events.request(message).catch(() => null);
    return { answers: [answer], missing: 0 };
  }

  async removeHistory(channel: string): Promise<void> {
    this.#requireStarted();
    const stream = this.#streams.get(channel);
    if (stream === undefined) return;
    // A new epoch even when the stream is read again at once: positions from before never match.
    this.#streams.delete(channel);
    this.#stream(channel, this.#now());
  }

  #requireStarted(): BrokerEvents {
    if (this.#events === undefined) throw new Error('memory broker used before start() or after close()');
    return this.#events;
  }

  #stream(channel: string, now: number): Stream {
    let stream = this.#streams.get(channel);
    if (stream === undefined) {
      stream = { epoch: newEpoch(), top: 0, records: [], storedAt: [], head: 0, lastPublishAt: now };
      this.#streams.set(channel, stream);
    }
    return stream;
  }

  #trim(stream: Stream, now: number): void {
    const cutoff = now - this.#options.ttlSeconds * 1000;
    const { storedAt } = stream;
    let head = Math.max(stream.head, storedAt.length - this.#options.size);
    while (head < storedAt.length && (storedAt[head] as number) <= cutoff) head++;
    if (head === stream.head) return;
    if (head === storedAt.length) {
      // Everything expired: start over with empty arrays rather than keep the dropped ones.
      stream.records = [];
      stream.storedAt = [];
      stream.head = 0;
    } else if (head >= COMPACT_AFTER && head * 2 >= storedAt.length) {
      stream.records = stream.records.slice(head);
      stream.storedAt = storedAt.slice(head);
      stream.head = 0;
    } else {
      // Dropped entries stay in the arrays until compaction; release the records they hold.
      for (let i = stream.head; i < head; i++) (stream.records as (PublicationRecord | undefined)[])[i] = undefined;
      stream.head = head;
    }
  }

  /** Forgets expired idempotency keys and idle empty streams, so memory follows live use. */
  #sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#idempotency) if (entry.expiresAt <= now) this.#idempotency.delete(key);
    const metaTtl = Math.max(this.#options.streamMetaTtlSeconds ?? 86_400, this.#options.ttlSeconds) * 1000;
    for (const [channel, stream] of this.#streams) {
      this.#trim(stream, now);
      if (
        stream.records.length === stream.head &&
        now - stream.lastPublishAt > metaTtl &&
        !this.#subscribed.has(channel)
      ) {
        this.#streams.delete(channel);
      }
    }
  }
}
