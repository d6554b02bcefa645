/**
 * A stream's record: its configuration and state, kept in the broker's metadata store under the
 * stream's channel name so every node sees it. The channel's log is the truth and the record a
 * summary of it up to `top`: `fold` applies each later publication, so a record a writer left
 * behind (it crashed between publishing and saving) is brought up to date by the next reader.
 * Only `forks` and `deletion: 'soft'` are not in the log; they change by compare-and-set.
 */
import type { Producer } from './headers.js';
import type { DsPublication, ForkOrigin, Segment, StreamConfig } from './publication.js';

export interface ProducerState {
  readonly epoch: number;
  readonly seq: number;
  /** When it last wrote (the publication's time): the oldest are forgotten past MAX_PRODUCERS. */
  readonly at: number;
}

export interface StreamRecord {
  readonly v: 1;
  readonly contentType: string;
  readonly ttl?: number;
  readonly expiresAt?: number;
  readonly createdAt: number;
  readonly epoch: string;
  /** Herald offset of the `ds.create` publication. */
  readonly created: number;
  /** position = base + Herald offset, for this stream's own publications. */
  readonly base: number;
  readonly start: number;
  readonly inherited: readonly Segment[];
  readonly fork?: ForkOrigin;
  /** Herald offset of the last publication folded in. */
  readonly top: number;
  /** Position of the last data: the stream's tail offset. */
  readonly tail: number;
  readonly closed: boolean;
  /** The producer tuple whose write closed the stream: its retry is a duplicate, not a conflict. */
  readonly closedBy?: Producer;
  readonly producers: Readonly<Record<string, ProducerState>>;
  readonly streamSeq?: string;
  /**
   * `pending`: a `ds.delete` is in the log and the deletion is not finished (any node finishes
   * it); `soft`: deleted while forks read it (410 for everyone else, PROTOCOL.md 4.2).
   */
  readonly deletion?: 'pending' | 'soft';
  /** Channels of the forks that read this stream. */
  readonly forks: readonly string[];
}

/** Producers remembered per stream; past it the one that wrote longest ago is forgotten. */
export const MAX_PRODUCERS = 256;

/** The record a `ds.create` publication starts, at Herald `offset` of channel `epoch`. */
export function createdRecord(config: StreamConfig, pub: DsPublication, epoch: string): StreamRecord {
  const hasData = pub.data !== null;
  const position = config.start + (hasData ? 1 : 0);
  return {
    v: 1,
    contentType: config.contentType,
    ...(config.ttl === undefined ? {} : { ttl: config.ttl }),
    ...(config.expiresAt === undefined ? {} : { expiresAt: config.expiresAt }),
    createdAt: pub.ts,
    epoch,
    created: pub.offset,
    base: position - pub.offset,
    start: config.start,
    inherited: config.inherited,
    ...(config.fork === undefined ? {} : { fork: config.fork }),
    top: pub.offset,
    tail: position,
    closed: pub.write.closes === true,
    producers: {},
    forks: [],
  };
}

/** The record after one more publication of its channel, in offset order. */
export function fold(record: StreamRecord, pub: DsPublication): StreamRecord {
  if (pub.offset <= record.top) return record;
  const moved = { ...record, top: pub.offset };
  // A deleted stream's channel may carry the next stream's publications: they are not this one's.
  if (record.deletion !== undefined || pub.kind === undefined || pub.kind === 'create') return moved;
  if (pub.kind === 'delete') return { ...moved, deletion: 'pending' };
  const { producer, streamSeq, closes } = pub.write;
  const closing = pub.kind === 'close' || closes === true;
  return {
    ...moved,
    ...(pub.kind === 'append' && pub.data !== null ? { tail: record.base + pub.offset } : {}),
    ...(producer === undefined ? {} : { producers: remember(record.producers, producer, pub.ts) }),
    ...(streamSeq === undefined ? {} : { streamSeq }),
    ...(closing ? { closed: true, ...(producer === undefined ? {} : { closedBy: producer }) } : {}),
  };
}

export function encodeRecord(record: StreamRecord): string {
  return JSON.stringify(record);
}

export function decodeRecord(text: string): StreamRecord {
  const record = JSON.parse(text) as StreamRecord;
  if (record.v !== 1) throw new Error(`unknown stream record version ${String(record.v)}`);
  return record;
}

/** The segments a read walks: the inherited ones, then this stream's own publications. */
export function ownSegment(record: StreamRecord, channel: string): Segment {
  return {
    channel,
    epoch: record.epoch,
    base: record.base,
    from: record.base + record.created - 1,
    to: Number.POSITIVE_INFINITY,
  };
}

function remember(
  producers: Readonly<Record<string, ProducerState>>,
  producer: Producer,
  at: number,
): Record<string, ProducerState> {
  const next: Record<string, ProducerState> = {
    ...producers,
    [producer.id]: { epoch: producer.epoch, seq: producer.seq, at },
  };
  const ids = Object.keys(next);
  if (ids.length > MAX_PRODUCERS) {
    let oldest = ids[0] as string;
    for (const id of ids) if ((next[id] as ProducerState).at < (next[oldest] as ProducerState).at) oldest = id;
    delete next[oldest];
  }
  return next;
}
