/**
 * Durable Streams writes as Herald publications on the stream's channel. Every write is one
 * publication, so its data, its effect on the stream's state and its place in the order land
 * together (one compare-and-append, broker.ts `expectedTop`):
 *
 *   event `ds.create`  the stream (re)starts; `info.ds.config` holds its configuration; `data`
 *                      the initial content (or null)
 *   event `ds.append`  `data` is the appended content (payload.ts); `info.ds` the write's producer
 *                      tuple, `Stream-Seq` and `closes: true` when it also closes the stream
 *   event `ds.close`   close without data (`info.ds` as for an append)
 *   event `ds.delete`  the stream is deleted; what follows belongs to the next stream at the path
 *
 * A Herald client following the channel sees the content in `data` and the rest in `event` and
 * `info`. Publications on the channel that are not Durable Streams writes (published through the
 * Herald API) take a position but carry nothing for Durable Streams readers.
 */
import type { PublicationRecord } from '@herald/server';
import type { Producer } from './headers.js';

export type Kind = 'create' | 'append' | 'close' | 'delete';

export const EVENT: Readonly<Record<Kind, string>> = {
  create: 'ds.create',
  append: 'ds.append',
  close: 'ds.close',
  delete: 'ds.delete',
};

const KINDS = new Map<string, Kind>(Object.entries(EVENT).map(([kind, event]) => [event, kind as Kind]));

/** Positions `(from, to]` of a stream are the publications of `channel` at offsets `position - base`. */
export interface Segment {
  readonly channel: string;
  readonly epoch: string;
  readonly base: number;
  readonly from: number;
  readonly to: number;
}

export interface ForkOrigin {
  /** The source stream's channel. */
  readonly source: string;
  /** The fork offset: the position in the source up to which the fork inherits. */
  readonly offset: number;
  readonly subOffset: number;
}

/** What `ds.create` records, enough to rebuild the stream's record from the log alone. */
export interface StreamConfig {
  readonly contentType: string;
  readonly ttl?: number;
  readonly expiresAt?: number;
  /** The position after which this stream's own publications come (the fork offset, else 0). */
  readonly start: number;
  readonly inherited: readonly Segment[];
  readonly fork?: ForkOrigin;
}

/** `info.ds` of a write. */
export interface WriteInfo {
  readonly producer?: Producer;
  readonly streamSeq?: string;
  readonly closes?: true;
  readonly config?: StreamConfig;
}

export interface DsPublication {
  /** The Herald offset. */
  readonly offset: number;
  /** Undefined for a publication that is not a Durable Streams write. */
  readonly kind: Kind | undefined;
  /** The publication's `data`; null when the write carried no content. */
  readonly data: unknown;
  readonly write: WriteInfo;
  readonly ts: number;
}

/** Reads a stored publication; anything that is not a well-formed write is a foreign one. */
export function parsePublication(record: PublicationRecord): DsPublication {
  const kind = record.event === undefined ? undefined : KINDS.get(record.event);
  let parsed: { data?: unknown; info?: { ds?: unknown }; ts?: unknown };
  try {
    parsed = JSON.parse(record.json) as typeof parsed;
  } catch {
    return { offset: record.offset, kind: undefined, data: null, write: {}, ts: 0 };
  }
  const write = parsed.info?.ds;
  const ts = typeof parsed.ts === 'number' ? parsed.ts : 0;
  if (kind === undefined || typeof write !== 'object' || write === null) {
    return { offset: record.offset, kind: undefined, data: null, write: {}, ts };
  }
  return { offset: record.offset, kind, data: parsed.data ?? null, write: write as WriteInfo, ts };
}

/** `info` of a write: its metadata under `ds`, the namespace Herald clients can ignore. */
export function infoJson(write: WriteInfo): string {
  return JSON.stringify({ ds: write });
}
