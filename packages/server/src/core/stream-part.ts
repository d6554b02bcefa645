/**
 * Text streams (docs/streams.md) as the core sees them: which stored publications open a stream
 * or append to one, and the `stream` / `append` publish fields checked into the member the broker
 * stores. Pure; a record's part is parsed once per node and cached on the record, since every
 * subscriber's window and every roll-up asks about the same record objects.
 */
import { HeraldError, type StreamStatus } from '@herald/protocol';
import type { PublicationRecord } from '../broker/broker.js';

/** One stored piece of a text stream. */
export interface StreamPart {
  /** The stream's id: the offset of the publication that opened it. */
  readonly id: number;
  /** True on the publication that opened the stream. */
  readonly opens: boolean;
  /** `open` while the stream goes on; the terminal status on the append that closes it. */
  readonly status: StreamStatus;
  /** The text this piece adds. */
  readonly text: string;
  /** The rest of the publication, for building a rolled-up one. */
  readonly event?: string;
  readonly ts: number;
  readonly info?: unknown;
}

const TERMINAL: readonly string[] = ['done', 'error', 'aborted'];

const parts = new WeakMap<PublicationRecord, StreamPart | null>();

/**
 * The stream piece a stored publication is, or undefined for any other publication. The stream
 * member is always the publication's last (`publicationJson`), so a cheap look at the text rules
 * out almost every other publication before anything is parsed.
 */
export function streamPart(record: PublicationRecord): StreamPart | undefined {
  if (record.offset === 0 || !mayBeStreamPart(record.json)) return undefined;
  const cached = parts.get(record);
  if (cached !== undefined) return cached ?? undefined;
  const part = parsePart(record);
  parts.set(record, part ?? null);
  return part;
}

/**
 * False for almost every publication that is no stream piece, without parsing or caching anything:
 * the member is an object and the publication's last, so such JSON ends with `}}`; most others end
 * with `"ts":…}` and are ruled out without a search.
 */
function mayBeStreamPart(json: string): boolean {
  if (json.charCodeAt(json.length - 2) !== 0x7d /* } */) return false;
  return json.lastIndexOf(',"stream":{') !== -1 || json.lastIndexOf(',"append":{') !== -1;
}

function parsePart(record: PublicationRecord): StreamPart | undefined {
  const json = record.json;
  let pub: Record<string, unknown>;
  try {
    pub = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof pub.data !== 'string' || typeof pub.ts !== 'number') return undefined;
  const rest = {
    ...(typeof pub.event === 'string' ? { event: pub.event } : {}),
    ts: pub.ts,
    ...(pub.info === undefined ? {} : { info: pub.info }),
  };
  // A rolled-up publication (roll-up.ts) is built for one reader and never rolled up again.
  const stream = pub.stream as { status?: unknown; id?: unknown } | undefined;
  if (typeof stream === 'object' && stream !== null && stream.status === 'open' && stream.id === undefined) {
    return { id: record.offset, opens: true, status: 'open', text: pub.data, ...rest };
  }
  const append = pub.append as { to?: unknown; status?: unknown; from?: unknown } | undefined;
  if (typeof append !== 'object' || append === null || append.from !== undefined) return undefined;
  const to = append.to;
  if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 1 || to >= record.offset) return undefined;
  const status = typeof append.status === 'string' && TERMINAL.includes(append.status) ? append.status : 'open';
  return { id: to, opens: false, status: status as StreamStatus, text: pub.data, ...rest };
}

/**
 * The stored member for a publish's `stream` / `append` fields, or undefined when it has neither.
 * Throws `bad_request` for anything else, before anything is stored: a stream's `data` is text
 * (a roll-up concatenates it), and stream pieces are stored, never ephemeral.
 */
export function streamMember(input: {
  readonly stream?: unknown;
  readonly append?: unknown;
  readonly data?: unknown;
  readonly ephemeral?: unknown;
}): string | undefined {
  const { stream, append } = input;
  if (stream === undefined && append === undefined) return undefined;
  if (stream !== undefined && append !== undefined) {
    throw new HeraldError('bad_request', 'a publish opens a stream (stream) or appends to one (append), not both');
  }
  if (typeof input.data !== 'string') throw new HeraldError('bad_request', 'data of a text stream must be a string');
  if (input.ephemeral === true) throw new HeraldError('bad_request', 'text stream publications cannot be ephemeral');
  if (stream !== undefined) {
    if (!isObject(stream) || stream.status !== 'open' || Object.keys(stream).length !== 1) {
      throw new HeraldError('bad_request', 'stream must be {"status": "open"}');
    }
    return '"stream":{"status":"open"}';
  }
  if (!isObject(append)) throw new HeraldError('bad_request', 'append must be an object {to, status?}');
  const { to, status } = append;
  if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 1) {
    throw new HeraldError('bad_request', 'append.to must be the offset of the publication that opened the stream');
  }
  for (const key of Object.keys(append)) {
    if (key !== 'to' && key !== 'status') throw new HeraldError('bad_request', `append.${key} is not a publish field`);
  }
  if (status === undefined) return `"append":{"to":${to}}`;
  if (typeof status !== 'string' || !TERMINAL.includes(status)) {
    throw new HeraldError('bad_request', 'append.status must be "done", "error" or "aborted"');
  }
  return `"append":{"to":${to},"status":"${status}"}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
