/**
 * Reading a channel's history from the JetStream stream. Offsets are Herald's (headers on each
 * message), not stream sequences, and a message may hold several consecutive publications
 * (message.ts), so a read first finds the stream sequence of the message holding the first
 * offset it needs: from the node's cache of recent sequences when it has it, otherwise by a
 * binary search with "next message of this subject from sequence N" lookups (offsets grow with
 * sequences). Then an ordered consumer filtered on the channel's subject streams the rest.
 *
 * Retention is decided here, the same way for every broker: only the newest `size` offsets, and
 * only messages younger than the ttl (by their JetStream timestamp), are ever served.
 */
import type { Position } from '@herald/protocol';
import {
  newEpoch,
  pageWithin,
  type HistoryLimits,
  type HistoryQuery,
  type HistoryResult,
  type PublicationRecord,
} from '@herald/server';
import { DeliverPolicy, type JsMsg, type KV, type StoredMsg } from 'nats';
import type { NatsLink } from './link.js';
import { decodeMessage } from './message.js';
import { token, type NatsNames } from './names.js';
import { isNotFound } from './setup.js';
import type { Stored, StreamCache } from './stream-cache.js';

/** A stored message: `offset` is its last publication's, `first` its first one's. */
interface Found extends Stored {
  readonly first: number;
  readonly records: readonly PublicationRecord[];
  /** The index of the publication its Nats-Msg-Id belongs to (a message of several). */
  readonly keyed: number | undefined;
  /** When JetStream stored it, ms. */
  readonly storedAt: number;
}

/** One publication of a stored message, with the message's store time. */
interface Entry {
  readonly record: PublicationRecord;
  readonly storedAt: number;
}

function entries(found: Found, from = 0): Entry[] {
  const out: Entry[] = [];
  for (const record of found.records) if (record.offset >= from) out.push({ record, storedAt: found.storedAt });
  return out;
}

/** Lookups a binary search may make: enough for any stream sequence below 2^40. */
const MAX_PROBES = 42;
const FETCH_EXPIRES_MS = 5_000;
/** Longest range read by parallel lookups instead of a consumer. */
const DIRECT_READ_MAX = 64;

export class HistoryReader {
  readonly #link: NatsLink;
  readonly #names: NatsNames;
  readonly #limits: HistoryLimits;
  readonly #cache: StreamCache;
  readonly #epochs: () => KV;

  constructor(link: NatsLink, names: NatsNames, limits: HistoryLimits, cache: StreamCache, epochs: () => KV) {
    this.#link = link;
    this.#names = names;
    this.#limits = limits;
    this.#cache = cache;
    this.#epochs = epochs;
  }

  /** The channel's latest message, or for a channel without any, its epoch at offset 0. */
  async top(channel: string): Promise<Found | (Stored & { records?: undefined })> {
    const subject = this.#names.history(token(channel));
    try {
      const message = await this.#link.session.jsm.streams.getMessage(this.#names.stream, { last_by_subj: subject });
      const found = fromStored(channel, message);
      this.#cache.learn(channel, found, found.first);
      return found;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    return { seq: 0, offset: 0, epoch: await this.#epochOf(channel) };
  }

  /** The publication a message's Nats-Msg-Id belongs to (its only one, or the keyed one of several). */
  async bySeq(channel: string, seq: number): Promise<PublicationRecord | undefined> {
    try {
      const found = fromStored(channel, await this.#link.session.jsm.streams.getMessage(this.#names.stream, { seq }));
      return found.records[found.keyed ?? 0];
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async read(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const last = await this.top(channel);
    const top: Position = { offset: last.offset, epoch: last.epoch };
    const lowest = Math.max(1, top.offset - this.#limits.size + 1);
    const cutoff = Date.now() - this.#limits.ttlSeconds * 1000;
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    const since = query.since;
    if (since !== undefined) {
      const lost: HistoryResult = { publications: [], top, recovered: false };
      if (since.epoch !== top.epoch || since.offset > top.offset) return lost;
      if (since.offset === top.offset) return { publications: [], top, recovered: true };
      if (since.offset + 1 < lowest || last.records === undefined) return lost;
      const count = Math.min(top.offset - since.offset, limit);
      const found = await this.#range(channel, last, since.offset + 1, Math.max(count, 1), query.maxBytes);
      const first = found[0];
      if (first === undefined || first.record.offset !== since.offset + 1 || first.storedAt <= cutoff) return lost;
      const records = found.slice(0, count).map((f) => f.record);
      // Fewer than asked is a loss, unless the read stopped at the byte bound of a page.
      const paged = query.maxBytes !== undefined && jsonLength(records) >= query.maxBytes;
      if (found.length < count && !paged) return lost;
      return { publications: pageWithin(records, query.maxBytes), top, recovered: true };
    }
    if (limit <= 0 || last.records === undefined) return { publications: [], top };
    const from = Math.max(lowest, top.offset - limit + 1);
    const found = await this.#range(channel, last, from, top.offset - from + 1);
    const kept = found.filter((f) => f.record.offset >= from && f.storedAt > cutoff).map((f) => f.record);
    return { publications: pageWithin(kept, query.maxBytes, true), top };
  }

  /**
   * Up to `count` publications from offset `from` on (or from the oldest kept, if `from` is gone),
   * possibly more: whole messages, without the publications before `from`. With `maxBytes`, the
   * read stops once that much JSON is in hand: a replay page never reads much past its bound.
   */
  async #range(channel: string, last: Found, from: number, count: number, maxBytes?: number): Promise<Entry[]> {
    if (from >= last.first) return entries(last, from);
    const known = await this.#fromCache(channel, last, from, count);
    if (known !== undefined) return known;
    const subject = this.#names.history(token(channel));
    const start = this.#cache.seqOf(channel, last.epoch, from) ?? (await this.#locate(channel, subject, from, last));
    const found = await this.#fetch(channel, subject, start ?? 1, from, count, maxBytes);
    if (start !== undefined && found[0]?.record.offset !== from) {
      // The cached sequence was stale: search for real.
      const located = await this.#locate(channel, subject, from, last);
      if (located !== undefined) return this.#fetch(channel, subject, located, from, count, maxBytes);
    }
    return found;
  }

  /**
   * A short range whose every sequence the node knows (it follows the channel) is read with
   * parallel lookups by sequence, without creating a consumer: the common resume after a blip.
   * Undefined when a sequence is unknown or turns out stale.
   */
  async #fromCache(channel: string, last: Found, from: number, count: number): Promise<Entry[] | undefined> {
    const end = Math.min(from + count - 1, last.first - 1);
    if (end - from + 1 > DIRECT_READ_MAX) return undefined;
    const seqs: number[] = [];
    for (let offset = from; offset <= end; offset++) {
      const seq = this.#cache.seqOf(channel, last.epoch, offset);
      if (seq === undefined) return undefined;
      // Consecutive offsets of one message share its sequence: read it once.
      if (seqs.at(-1) !== seq) seqs.push(seq);
    }
    const jsm = this.#link.session.jsm;
    let messages: Found[];
    try {
      messages = await Promise.all(
        seqs.map(async (seq) => fromStored(channel, await jsm.streams.getMessage(this.#names.stream, { seq }))),
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const found = messages.flatMap((m) => entries(m, from)).filter((f) => f.record.offset <= end);
    if (found.length !== end - from + 1) return undefined;
    if (found.some((f, i) => f.record.offset !== from + i || f.record.epoch !== last.epoch)) return undefined;
    return end === last.first - 1 && from + count - 1 >= last.first ? [...found, ...entries(last)] : found;
  }

  /** The stream sequence of the channel's message holding `offset`, or undefined when it is not kept. */
  async #locate(channel: string, subject: string, offset: number, last: Found): Promise<number | undefined> {
    const jsm = this.#link.session.jsm;
    let low = 1;
    let high = last.seq;
    // With one publication per message and no other channel in between, the offset sits exactly this far back.
    let probe = Math.max(1, last.seq - (last.offset - offset));
    for (let i = 0; i < MAX_PROBES && low <= high; i++) {
      let message: StoredMsg;
      try {
        message = await jsm.streams.getMessage(this.#names.stream, { next_by_subj: subject, seq: probe } as never);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        high = probe - 1;
        probe = Math.floor((low + high) / 2);
        continue;
      }
      const found = fromStored(channel, message);
      if (found.epoch === last.epoch) this.#cache.learn(channel, found, found.first);
      if (found.first <= offset && offset <= found.offset) return found.seq;
      // Invariant: if the offset is kept, its message's sequence is within [low, high].
      if (found.offset < offset) low = found.seq + 1;
      else high = probe - 1;
      probe = Math.floor((low + high) / 2);
    }
    return undefined;
  }

  /** Messages from `startSeq` on until `count` publications from `from` on are in hand (or none is left). */
  async #fetch(
    channel: string,
    subject: string,
    startSeq: number,
    from: number,
    count: number,
    maxBytes = Number.POSITIVE_INFINITY,
  ): Promise<Entry[]> {
    const jsm = this.#link.session.jsm;
    const first = async (): Promise<Found | undefined> => {
      try {
        return fromStored(
          channel,
          await jsm.streams.getMessage(this.#names.stream, { next_by_subj: subject, seq: startSeq } as never),
        );
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    };
    if (count === 1) {
      const found = await first();
      return found === undefined ? [] : entries(found, from);
    }
    const consumer = await this.#link.session.js.consumers.get(this.#names.stream, {
      filterSubjects: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
    });
    const found: Entry[] = [];
    let bytes = 0;
    try {
      // Each message holds at least one publication: `count` messages are always enough.
      const messages = await consumer.fetch({ max_messages: count, expires: FETCH_EXPIRES_MS });
      for await (const message of messages) {
        for (const entry of entries(fromJsMsg(channel, message), from)) {
          found.push(entry);
          bytes += entry.record.json.length;
        }
        if (found.length >= count || bytes >= maxBytes || message.info.pending === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return found;
  }

  /**
   * The epoch of a channel with no message: created once in KV (the first writer wins). The KV
   * entry expires before the stream forgets the channel's last message (see setup.ts), so an
   * epoch never comes back with offsets that restart.
   */
  async #epochOf(channel: string): Promise<string> {
    const kv = this.#epochs();
    const key = token(channel);
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = await kv.get(key);
      if (entry !== null && entry.operation === 'PUT') return entry.string();
      try {
        const epoch = newEpoch();
        await kv.create(key, epoch);
        return epoch;
      } catch {
        // Another node created it first: read theirs.
      }
    }
    throw new Error(`cannot settle the epoch of ${channel}`);
  }
}

export function fromStored(channel: string, message: StoredMsg): Found {
  const decoded = decodeMessage(channel, message.header, message.string());
  return {
    seq: message.seq,
    first: decoded.first,
    offset: decoded.first + decoded.records.length - 1,
    epoch: decoded.epoch,
    records: decoded.records,
    keyed: decoded.keyed,
    storedAt: message.time.getTime(),
  };
}

function fromJsMsg(channel: string, message: JsMsg): Found {
  const decoded = decodeMessage(channel, message.headers, message.string());
  return {
    seq: message.info.streamSequence,
    first: decoded.first,
    offset: decoded.first + decoded.records.length - 1,
    epoch: decoded.epoch,
    records: decoded.records,
    keyed: decoded.keyed,
    storedAt: Math.floor(message.info.timestampNanos / 1e6),
  };
}

function jsonLength(records: readonly PublicationRecord[]): number {
  let n = 0;
  for (const record of records) n += record.json.length;
  return n;
}
