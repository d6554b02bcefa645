/**
 * The protocol's request headers, checked whole before anything is read or written: every
 * malformed value is a 400 that says which header (PROTOCOL.md 5.1, 5.2, 5.2.1, 4.2).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { DsError } from './errors.js';
import { parseOffset } from './offsets.js';

/** A whole number in decimal without sign, leading zeros, point or exponent. */
const WHOLE = /^(0|[1-9]\d{0,15})$/;
const MEDIA_TYPE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(;.*)?$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const MAX_TTL_SECONDS = 10 * 365 * 86_400;
const MAX_TEXT = 256;

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

export interface Producer {
  readonly id: string;
  readonly epoch: number;
  readonly seq: number;
}

export interface ForkRequest {
  /** `Stream-Forked-From` as given: a path below the mount (or the full request path). */
  readonly from: string;
  /** `Stream-Fork-Offset` as a position; absent = the source's tail. */
  readonly offset?: number;
  /** `Stream-Fork-Sub-Offset`; 0 when absent. */
  readonly subOffset: number;
}

export interface CreateRequest {
  readonly contentType?: string;
  readonly ttl?: number;
  /** Epoch milliseconds. */
  readonly expiresAt?: number;
  readonly closed: boolean;
  readonly fork?: ForkRequest;
}

export interface AppendRequest {
  readonly contentType?: string;
  readonly closed: boolean;
  readonly streamSeq?: string;
  readonly producer?: Producer;
}

export function createRequest(headers: IncomingHttpHeaders): CreateRequest {
  const ttlText = one(headers, 'stream-ttl');
  const expiresText = one(headers, 'stream-expires-at');
  if (ttlText !== undefined && expiresText !== undefined) {
    throw new DsError(400, 'bad_request', 'give Stream-TTL or Stream-Expires-At, not both');
  }
  let ttl: number | undefined;
  if (ttlText !== undefined) {
    if (!WHOLE.test(ttlText) || Number(ttlText) > MAX_TTL_SECONDS) {
      throw new DsError(400, 'bad_request', 'Stream-TTL must be a whole number of seconds (no sign, no leading zero)');
    }
    ttl = Number(ttlText);
  }
  let expiresAt: number | undefined;
  if (expiresText !== undefined) {
    const ms = RFC3339.test(expiresText) ? Date.parse(expiresText) : Number.NaN;
    if (!Number.isFinite(ms)) throw new DsError(400, 'bad_request', 'Stream-Expires-At must be an RFC 3339 timestamp');
    expiresAt = ms;
  }
  const fork = forkRequest(headers);
  const contentType = contentTypeOf(headers);
  return {
    ...(contentType === undefined ? {} : { contentType }),
    ...(ttl === undefined ? {} : { ttl }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    closed: closedFlag(headers),
    ...(fork === undefined ? {} : { fork }),
  };
}

export function appendRequest(headers: IncomingHttpHeaders): AppendRequest {
  const streamSeq = one(headers, 'stream-seq');
  if (streamSeq !== undefined && (streamSeq === '' || streamSeq.length > MAX_TEXT)) {
    throw new DsError(400, 'bad_request', 'Stream-Seq must be 1 to 256 characters');
  }
  const producer = producerOf(headers);
  const contentType = contentTypeOf(headers);
  return {
    ...(contentType === undefined ? {} : { contentType }),
    closed: closedFlag(headers),
    ...(streamSeq === undefined ? {} : { streamSeq }),
    ...(producer === undefined ? {} : { producer }),
  };
}

/** The media type alone, lowercased: what two content types are compared by. */
export function mediaType(contentType: string): string {
  return (MEDIA_TYPE.exec(contentType)?.[1] ?? contentType).toLowerCase();
}

/** `Stream-Closed` counts only when it is exactly `true` (any case); other values are ignored. */
function closedFlag(headers: IncomingHttpHeaders): boolean {
  return one(headers, 'stream-closed')?.toLowerCase() === 'true';
}

function contentTypeOf(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['content-type']?.trim();
  if (value === undefined || value === '') return undefined;
  if (!MEDIA_TYPE.test(value)) throw new DsError(400, 'bad_request', 'Content-Type is not a media type');
  return value;
}

function producerOf(headers: IncomingHttpHeaders): Producer | undefined {
  const id = one(headers, 'producer-id');
  const epoch = one(headers, 'producer-epoch');
  const seq = one(headers, 'producer-seq');
  if (id === undefined && epoch === undefined && seq === undefined) return undefined;
  if (id === undefined || epoch === undefined || seq === undefined) {
    throw new DsError(400, 'bad_request', 'Producer-Id, Producer-Epoch and Producer-Seq go together');
  }
  if (id === '' || id.length > MAX_TEXT)
    throw new DsError(400, 'bad_request', 'Producer-Id must be 1 to 256 characters');
  for (const [name, value] of [
    ['Producer-Epoch', epoch],
    ['Producer-Seq', seq],
  ] as const) {
    if (!WHOLE.test(value) || !Number.isSafeInteger(Number(value))) {
      throw new DsError(400, 'bad_request', `${name} must be a whole number no larger than 2^53-1`);
    }
  }
  return { id, epoch: Number(epoch), seq: Number(seq) };
}

function forkRequest(headers: IncomingHttpHeaders): ForkRequest | undefined {
  const from = one(headers, 'stream-forked-from');
  const offsetText = one(headers, 'stream-fork-offset');
  const subText = one(headers, 'stream-fork-sub-offset');
  if (from === undefined) {
    if (offsetText !== undefined || subText !== undefined) {
      throw new DsError(400, 'bad_request', 'Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From');
    }
    return undefined;
  }
  if (from.trim() === '') throw new DsError(400, 'bad_request', 'Stream-Forked-From must name a stream');
  if (subText !== undefined && !WHOLE.test(subText)) {
    throw new DsError(400, 'bad_request', 'Stream-Fork-Sub-Offset must be a whole number (no sign, no leading zero)');
  }
  return {
    from: from.trim(),
    ...(offsetText === undefined ? {} : { offset: parseOffset(offsetText) }),
    subOffset: subText === undefined ? 0 : Number(subText),
  };
}

/** A header given once; a repeated protocol header is a malformed request. */
function one(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) throw new DsError(400, 'bad_request', `${name} may be given once`);
  return value;
}
