/**
 * Storing publications on NATS, pipelined per channel.
 *
 * A channel's offsets are contiguous because each message is stored with
 * `Nats-Expected-Last-Subject-Sequence` = the stream sequence of the channel's previous message:
 * JetStream refuses it (10071) if anything else was stored on the channel in between, and the
 * node then rereads the top and tries again. That check chains each message to the one before,
 * so a node can have only one message of a channel on the way at a time. What it can do is put
 * everything the channel gathered meanwhile into the next message: a message holds one
 * publication or several consecutive ones (message.ts). So per channel: the publications of one
 * event-loop turn leave together at the end of the turn, and while a message is on the way the
 * next publications queue and leave together as soon as it is acknowledged. Under load, messages
 * grow instead of the queue; with one publication at a time, each leaves alone at once.
 * Channels do not wait for each other.
 *
 * Idempotency keys: a message's `Nats-Msg-Id` is JetStream's atomic deduplication across nodes,
 * and a message has one, so a message holds at most one publication with a key (with any number
 * without). When JetStream answers "duplicate", nothing of the message was stored: the keyed
 * publication is answered with its first result and the others go back to the head of the queue.
 *
 * Failures: an error answer (the message was refused) fails that message's publications; no
 * answer (timeout, connection lost) fails them and the channel's queue too (those were never
 * sent, and have waited long enough), and forgets the channel's top, which the next message
 * rereads. Publications that failed without an answer may have been stored: a retry with the
 * same key is answered with the first result.
 *
 * Bound: `admitPublish` refuses a publish at once when too many wait on this node, or while the
 * channel's oldest unanswered publication has waited too long: a broker that went silent, or a
 * channel published faster than its messages can carry (publish-queue.ts in @herald/server).
 */
import { HeraldError, publicationJson } from '@herald/protocol';
import {
  TopConflictError,
  admitPublish,
  type PublicationRecord,
  type PublishDraft,
  type PublishQueueLimits,
  type PublishResult,
} from '@herald/server';
import type { Logger } from 'pino';
import type { HistoryReader } from './history-reader.js';
import { JsPublishError, type JsAck, type JsPublisher } from './js-publish.js';
import { encodeMessage, record } from './message.js';
import { WRONG_LAST_SEQUENCE } from './setup.js';
import type { Stored, StreamCache } from './stream-cache.js';

/** Publish attempts per message before giving up under contention for one channel. */
const MAX_ATTEMPTS = 64;
/** Publications per message. */
const MAX_ITEMS = 256;

export interface Idempotency {
  /** The message id of a publication's key (channel and key tokens). */
  messageId(channel: string, key: string): string;
  /** The first result for a key JetStream saw before (its message's stream sequence). */
  original(channel: string, messageId: string, seq: number): Promise<PublicationRecord>;
  /** Records the first result, for duplicates answered without the stream (best effort). */
  remember(messageId: string, record: PublicationRecord): void;
}

export interface PublisherParts {
  readonly js: JsPublisher;
  readonly cache: StreamCache;
  readonly reader: HistoryReader;
  readonly idempotency: Idempotency;
  readonly limits: PublishQueueLimits;
  /** The history subject of a channel. */
  subject(channel: string): string;
  /** Largest message body the server takes (its `max_payload`), bytes. */
  maxPayload(): number;
  /** Whether the connection is up: while it is down, nats.js would hold a message and send it later. */
  connected(): boolean;
  readonly logger: Logger;
}

interface Item {
  readonly draft: PublishDraft;
  /** When it was accepted (ms). */
  readonly at: number;
  readonly resolve: (result: PublishResult) => void;
  readonly reject: (error: unknown) => void;
}

/** A channel with publications waiting or on the way. */
interface Lane {
  readonly channel: string;
  queue: Item[];
  /** When the lane's current message started (top read or sent); undefined when idle. */
  busySince: number | undefined;
  /** When the oldest publication not answered yet was accepted: the first of the message on the way. */
  oldestAt: number | undefined;
  /** Keyed publications in `queue`: each needs a message of its own. */
  keyed: number;
  /** Recent round trips of the channel's messages (ms, moving average; 0 until one is measured). */
  roundTripMs: number;
}

export class NatsPublisher {
  readonly #parts: PublisherParts;
  readonly #lanes = new Map<string, Lane>();
  /** Idle lanes that got publications this turn; they start at the end of the turn. */
  readonly #starting = new Set<Lane>();
  #scheduled = false;
  /** Publications accepted and not answered yet, on every channel. */
  #pending = 0;

  constructor(parts: PublisherParts) {
    this.#parts = parts;
  }

  get pending(): number {
    return this.#pending;
  }

  publish(draft: PublishDraft): Promise<PublishResult> {
    let lane = this.#lanes.get(draft.channel);
    const now = Date.now();
    const keyed = draft.idempotencyKey !== undefined;
    // A channel whose oldest publication has waited too long (a silent broker) refuses more at once.
    admitPublish(this.#parts.limits, this.#pending, lane?.oldestAt, now);
    if (lane !== undefined) this.#admitToLane(lane, keyed);
    if (lane === undefined) {
      lane = { channel: draft.channel, queue: [], busySince: undefined, oldestAt: undefined, keyed: 0, roundTripMs: 0 };
      this.#lanes.set(draft.channel, lane);
    }
    this.#pending++;
    if (keyed) lane.keyed++;
    const promise = new Promise<PublishResult>((resolve, reject) =>
      (lane as Lane).queue.push({ draft, at: now, resolve, reject }),
    );
    if (lane.busySince === undefined) {
      this.#starting.add(lane);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#startLanes);
      }
    }
    return promise;
  }

  /**
   * Keyed publications of a channel leave one message each, one message per round trip: a channel
   * that gets them faster than that would make every later one wait longer. A publication that
   * would wait past `maxWaitMs` (the messages ahead of it times the channel's round trip) is
   * refused now, not answered after its client gave up.
   */
  #admitToLane(lane: Lane, keyed: boolean): void {
    const ahead = (lane.busySince === undefined ? 0 : 1) + lane.keyed + (keyed ? 1 : 0);
    const expectedMs = ahead * lane.roundTripMs;
    if (expectedMs >= this.#parts.limits.maxWaitMs) {
      throw new HeraldError(
        'rate_limited',
        `channel ${lane.channel} gets publications faster than the broker stores them (about ${Math.round(expectedMs)} ms ` +
          'of them waiting); nothing was published',
        { retryAfterSeconds: 1 },
      );
    }
  }

  readonly #startLanes = (): void => {
    this.#scheduled = false;
    const lanes = [...this.#starting];
    this.#starting.clear();
    for (const lane of lanes) if (lane.busySince === undefined) this.#next(lane);
  };

  /** Sends the lane's next message, or retires the lane when nothing waits. */
  #next(lane: Lane): void {
    if (lane.queue.length === 0) {
      lane.busySince = undefined;
      lane.oldestAt = undefined;
      if (this.#lanes.get(lane.channel) === lane) this.#lanes.delete(lane.channel);
      return;
    }
    lane.busySince = Date.now();
    const batch = this.#take(lane);
    lane.oldestAt = batch[0]?.at;
    this.#attempt(lane, batch, 1);
  }

  /**
   * The queue's head: up to MAX_ITEMS and a size budget, with at most one keyed publication. A
   * conditional publication (`expectedTop`) leaves alone: its condition is on the top it follows.
   */
  #take(lane: Lane): Item[] {
    const budget = Math.floor(this.#parts.maxPayload() / 4); // JSON chars; UTF-8 may take 3 bytes each
    const queue = lane.queue;
    let n = 0;
    let chars = 0;
    let keyed = false;
    while (n < queue.length && n < MAX_ITEMS) {
      const draft = (queue[n] as Item).draft;
      const hasKey = draft.idempotencyKey !== undefined;
      const conditional = draft.expectedTop !== undefined;
      if (n > 0 && (conditional || (hasKey && keyed) || chars + draft.dataJson.length > budget)) break;
      keyed ||= hasKey;
      chars += draft.dataJson.length;
      n++;
    }
    if ((queue[0] as Item).draft.expectedTop !== undefined) n = Math.min(n, 1);
    const batch = queue.splice(0, n);
    if (keyed) lane.keyed--;
    return batch;
  }

  #attempt(lane: Lane, batch: Item[], attempt: number): void {
    const known = this.#parts.cache.last(lane.channel);
    if (known !== undefined) return this.#send(lane, batch, known, attempt);
    this.#reread(lane, batch, attempt);
  }

  #reread(lane: Lane, batch: Item[], attempt: number): void {
    this.#parts.reader.top(lane.channel).then(
      (top) => this.#send(lane, batch, top, attempt, true),
      (error: unknown) => this.#failed(lane, batch, error, true),
    );
  }

  /** `fresh`: `last` was just read from the stream, not taken from the cache. */
  #send(lane: Lane, batch: Item[], last: Stored, attempt: number, fresh = false): void {
    const { channel } = lane;
    if (!this.#parts.connected()) {
      return this.#failed(lane, batch, new JsPublishError('nats is not connected', undefined, false), true);
    }
    const expected = batch.length === 1 ? batch[0]?.draft.expectedTop : undefined;
    if (expected !== undefined && (last.offset !== expected.offset || last.epoch !== expected.epoch)) {
      // A cached top may be behind: only the stream's own answer can refuse the condition.
      if (!fresh) {
        this.#parts.cache.forget(channel);
        return this.#reread(lane, batch, attempt);
      }
      this.#pending -= 1;
      batch[0]?.reject(new TopConflictError(channel));
      return this.#next(lane);
    }
    const records = batch.map((item, i) => stored(item.draft, last.offset + 1 + i, last.epoch));
    const keyedIndex = batch.findIndex((item) => item.draft.idempotencyKey !== undefined);
    const keyedItem = batch[keyedIndex];
    const messageId =
      keyedItem === undefined
        ? undefined
        : this.#parts.idempotency.messageId(channel, keyedItem.draft.idempotencyKey as string);
    const { payload, headers } = encodeMessage(records, keyedIndex < 0 ? undefined : keyedIndex);
    headers.set('Nats-Expected-Last-Subject-Sequence', String(last.seq));
    if (messageId !== undefined) headers.set('Nats-Msg-Id', messageId);
    // Sub-millisecond: a loopback round trip measured in whole ms reads 0 and would admit anything.
    const sentAt = performance.now();
    try {
      this.#parts.js.publish(this.#parts.subject(channel), payload, headers, (error, ack) => {
        if (error !== undefined || ack === undefined) return this.#refused(lane, batch, attempt, error);
        const roundTrip = performance.now() - sentAt;
        lane.roundTripMs = lane.roundTripMs === 0 ? roundTrip : lane.roundTripMs * 0.8 + roundTrip * 0.2;
        if (ack.duplicate) return this.#duplicate(lane, batch, keyedIndex, messageId, ack);
        this.#parts.cache.learn(channel, { seq: ack.seq, offset: last.offset + batch.length, epoch: last.epoch });
        this.#pending -= batch.length;
        batch.forEach((item, i) => item.resolve({ record: records[i] as PublicationRecord, duplicate: false }));
        if (messageId !== undefined)
          this.#parts.idempotency.remember(messageId, records[keyedIndex] as PublicationRecord);
        this.#next(lane);
      });
    } catch (error) {
      // Not sent at all (too large, connection closed): nothing was stored.
      this.#failed(lane, batch, error, false);
    }
  }

  #refused(lane: Lane, batch: Item[], attempt: number, error: JsPublishError | undefined): void {
    if (error?.errCode === WRONG_LAST_SEQUENCE && attempt < MAX_ATTEMPTS) {
      // Someone else stored on this channel first: reread the top and go again.
      this.#parts.cache.forget(lane.channel);
      if (attempt <= 2) return this.#attempt(lane, batch, attempt + 1);
      setTimeout(() => this.#attempt(lane, batch, attempt + 1), Math.random() * attempt);
      return;
    }
    const unknown = error === undefined || error.unknownOutcome;
    // Stored or not, the top this node knew may be wrong now.
    if (unknown) this.#parts.cache.forget(lane.channel);
    this.#failed(lane, batch, error ?? new Error('no answer from nats'), unknown);
  }

  /** The keyed publication was stored before, so this message was not: answer it, resend the rest. */
  #duplicate(lane: Lane, batch: Item[], keyedIndex: number, messageId: string | undefined, ack: JsAck): void {
    const keyed = batch[keyedIndex];
    if (keyed === undefined || messageId === undefined) {
      // JetStream said "duplicate" to a message without an id: not one of ours to explain.
      return this.#failed(lane, batch, new Error('nats answered a duplicate without a message id'), true);
    }
    lane.queue.unshift(...batch.filter((item) => item !== keyed));
    this.#parts.idempotency.original(lane.channel, messageId, ack.seq).then(
      (record) => keyed.resolve({ record, duplicate: true }),
      (error: unknown) => keyed.reject(error),
    );
    this.#pending--;
    this.#next(lane);
  }

  /** Fails `batch` (and, with `andQueue`, everything queued on the channel), then goes on. */
  #failed(lane: Lane, batch: Item[], error: unknown, andQueue: boolean): void {
    const failed = andQueue ? [...batch, ...lane.queue.splice(0)] : batch;
    if (andQueue) lane.keyed = 0;
    this.#pending -= failed.length;
    for (const item of failed) item.reject(error);
    this.#next(lane);
  }
}

function stored(draft: PublishDraft, offset: number, epoch: string): PublicationRecord {
  const { channel, dataJson, event, ts, infoJson, streamJson } = draft;
  return record(
    channel,
    offset,
    epoch,
    event,
    publicationJson({ channel, offset, epoch, dataJson, event, ts, infoJson, streamJson }),
  );
}
