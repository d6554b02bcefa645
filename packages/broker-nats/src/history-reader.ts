/**
 * Reading a channel's history from the JetStream stream. Offsets are Herald's (headers on each
 * message), not stream sequences, so a read first finds the stream sequence of the first offset
 * it needs: from the node's cache of recent sequences when it has it, otherwise by a binary
 * search with "next message of this subject from sequence N" lookups (offsets grow with
 * sequences). Then an ordered consumer filtered on the channel's subject streams the rest.
 *
 * Retention is decided here, the same way for every broker: only the newest `size` offsets, and
 * only messages younger than the ttl (by their JetStream timestamp), are ever served.
 */
import type { Position } from '@herald/protocol';
import {
  newEpoch,
  type HistoryLimits,
  type HistoryQuery,
  type HistoryResult,
  type PublicationRecord,
} from '@herald/server';
import { DeliverPolicy, type JsMsg, type KV, type MsgHdrs, type StoredMsg } from 'nats';
import type { NatsLink } from './link.js';
import { HEADER, token, type NatsNames } from './names.js';
import { isNotFound } from './setup.js';
import type { Stored, StreamCache } from './stream-cache.js';

interface Found extends Stored {
  readonly record: PublicationRecord;
  /** When JetStream stored it, ms. */
  readonly storedAt: number;
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
  async top(channel: string): Promise<Found | (Stored & { record?: undefined })> {
    const subject = this.#names.history(token(channel));
    try {
      const message = await this.#link.session.jsm.streams.getMessage(this.#names.stream, { last_by_subj: subject });
      const found = fromStored(channel, message);
      this.#cache.learn(channel, found);
      return found;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    return { seq: 0, offset: 0, epoch: await this.#epochOf(channel) };
  }

  async bySeq(channel: string, seq: number): Promise<PublicationRecord | undefined> {
    try {
      return fromStored(channel, await this.#link.session.jsm.streams.getMessage(this.#names.stream, { seq })).record;
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
      if (since.offset + 1 < lowest || last.record === undefined) return lost;
      const count = Math.min(top.offset - since.offset, limit);
      const found = await this.#range(channel, last, since.offset + 1, Math.max(count, 1));
      const first = found[0];
      if (first === undefined || first.offset !== since.offset + 1 || first.storedAt <= cutoff) return lost;
      if (found.length < count) return lost;
      return { publications: found.slice(0, count).map((f) => f.record), top, recovered: true };
    }
    if (limit <= 0 || last.record === undefined) return { publications: [], top };
    const from = Math.max(lowest, top.offset - limit + 1);
    const found = await this.#range(channel, last, from, top.offset - from + 1);
    return { publications: found.filter((f) => f.offset >= from && f.storedAt > cutoff).map((f) => f.record), top };
  }

  /** Up to `count` messages from offset `from` on (or from the oldest kept, if `from` is gone). */
  async #range(channel: string, last: Found, from: number, count: number): Promise<Found[]> {
    if (from >= last.offset) return from === last.offset ? [last] : [];
    const known = await this.#fromCache(channel, last, from, count);
    if (known !== undefined) return known;
    const subject = this.#names.history(token(channel));
    const start = this.#cache.seqOf(channel, last.epoch, from) ?? (await this.#locate(channel, subject, from, last));
    const found = await this.#fetch(channel, subject, start ?? 1, count);
    if (start !== undefined && found[0]?.offset !== from) {
      // The cached sequence was stale: search for real.
      const located = await this.#locate(channel, subject, from, last);
      if (located !== undefined) return this.#fetch(channel, subject, located, count);
    }
    return found;
  }

  /**
   * A short range whose every sequence the node knows (it follows the channel) is read with
   * parallel lookups by sequence, without creating a consumer: the common resume after a blip.
   * Undefined when a sequence is unknown or turns out stale.
   */
  async #fromCache(channel: string, last: Found, from: number, count: number): Promise<Found[] | undefined> {
    const end = Math.min(from + count - 1, last.offset - 1);
    if (end - from + 1 > DIRECT_READ_MAX) return undefined;
    const seqs: number[] = [];
    for (let offset = from; offset <= end; offset++) {
      const seq = this.#cache.seqOf(channel, last.epoch, offset);
      if (seq === undefined) return undefined;
      seqs.push(seq);
    }
    const jsm = this.#link.session.jsm;
    let found: Found[];
    try {
      found = await Promise.all(
        seqs.map(async (seq) => fromStored(channel, await jsm.streams.getMessage(this.#names.stream, { seq }))),
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    if (found.some((f, i) => f.offset !== from + i || f.epoch !== last.epoch)) return undefined;
    return end === last.offset - 1 && from + count - 1 >= last.offset ? [...found, last] : found;
  }

  /** The stream sequence of the channel's message at `offset`, or undefined when it is not kept. */
  async #locate(channel: string, subject: string, offset: number, last: Found): Promise<number | undefined> {
    const jsm = this.#link.session.jsm;
    let low = 1;
    let high = last.seq;
    // With no other channel in between, the offset sits exactly this far before the last one.
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
      if (found.epoch === last.epoch) this.#cache.learn(channel, found);
      if (found.offset === offset) return found.seq;
      // Invariant: if the offset is kept, its sequence is within [low, high].
      if (found.offset < offset) low = found.seq + 1;
      else high = probe - 1;
      probe = Math.floor((low + high) / 2);
    }
    return undefined;
  }

  async #fetch(channel: string, subject: string, startSeq: number, count: number): Promise<Found[]> {
    if (count === 1) {
      try {
        const message = await this.#link.session.jsm.streams.getMessage(this.#names.stream, {
          next_by_subj: subject,
          seq: startSeq,
        } as never);
        return [fromStored(channel, message)];
      } catch (error) {
        if (isNotFound(error)) return [];
        throw error;
      }
    }
    const consumer = await this.#link.session.js.consumers.get(this.#names.stream, {
      filterSubjects: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
    });
    const found: Found[] = [];
    try {
      const messages = await consumer.fetch({ max_messages: count, expires: FETCH_EXPIRES_MS });
      for await (const message of messages) {
        found.push(fromJsMsg(channel, message));
        if (found.length >= count || message.info.pending === 0) break;
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

function recordOf(channel: string, headers: MsgHdrs | undefined, json: string): Omit<Found, 'seq' | 'storedAt'> {
  const offset = Number(headers?.get(HEADER.offset));
  const epoch = headers?.get(HEADER.epoch) ?? '';
  const event = headers?.get(HEADER.event) ?? '';
  const record: PublicationRecord =
    event === '' ? { channel, offset, epoch, json } : { channel, offset, epoch, event, json };
  return { record, offset, epoch };
}

export function fromStored(channel: string, message: StoredMsg): Found {
  return { ...recordOf(channel, message.header, message.string()), seq: message.seq, storedAt: message.time.getTime() };
}

function fromJsMsg(channel: string, message: JsMsg): Found {
  return {
    ...recordOf(channel, message.headers, message.string()),
    seq: message.info.streamSequence,
    storedAt: Math.floor(message.info.timestampNanos / 1e6),
  };
}
