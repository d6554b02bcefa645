/**
 * Catch-up reads: the data after a position, walking the stream's segments (a fork's inherited
 * ranges of other channels, then its own channel) through the broker's history. A read never
 * returns a partial answer silently: a range the broker no longer holds is a 410.
 */
import type { Broker } from '@herald/server';
import type { Position } from '@herald/protocol';
import { gone } from './errors.js';
import { modeOf, payloadOf, type Payload } from './payload.js';
import { parsePublication, type DsPublication, type Segment } from './publication.js';
import { ownSegment, type StreamRecord } from './record.js';

export interface ReadLimits {
  /** Stop adding data past this many bytes (JSON: bytes of message text); one chunk always goes. */
  readonly maxBytes: number;
  /** Publications asked of the broker per history read. */
  readonly page: number;
}

export interface Chunk {
  /** The position this chunk ends at: its publication's. */
  readonly position: number;
  readonly payload: Payload;
}

export interface ReadResult {
  readonly chunks: readonly Chunk[];
  /** The offset to read on from: the last chunk's position, or where the read started. */
  readonly next: number;
  /** Everything the stream held when the read ended was read. */
  readonly upToDate: boolean;
  /** A close was read (or the record says closed) and nothing comes after it. */
  readonly closed: boolean;
  /** The stream's own channel position the read reached: where a live read subscribes from. */
  readonly ownTop?: Position;
  /** The read met the stream's deletion: nothing more will come. */
  readonly deleted?: true;
}

/** The data of the stream after position `from`, within `limits`. */
export async function readStream(
  broker: Broker,
  channel: string,
  record: StreamRecord,
  from: number,
  limits: ReadLimits,
): Promise<ReadResult> {
  const mode = modeOf(record.contentType);
  const chunks: Chunk[] = [];
  let bytes = 0;
  let next = from;
  let cursor = from;
  let closed = record.closed;
  const own = ownSegment(record, channel);
  for (const segment of [...record.inherited, own]) {
    if (segment.to <= cursor) continue;
    const isOwn = segment === own;
    let since = Math.max(cursor, segment.from) - segment.base;
    for (;;) {
      const remaining = isOwn ? limits.page : Math.min(limits.page, segment.to - segment.base - since);
      if (remaining <= 0) break;
      const history = await broker.history(segment.channel, {
        since: { offset: since, epoch: segment.epoch },
        limit: remaining,
      });
      if (history.recovered === false) throw gone(lostMessage(segment, isOwn));
      for (const record of history.publications) {
        const pub = parsePublication(record);
        if (isOwn && pub.offset > own.from - own.base + 1 && (pub.kind === 'create' || pub.kind === 'delete')) {
          // The stream ended here (deleted): what follows belongs to the next stream at the path.
          return { chunks, next, upToDate: true, closed: false, deleted: true };
        }
        const payload = dataOf(mode, pub);
        if (payload !== undefined) {
          const size = weight(payload);
          if (chunks.length > 0 && bytes + size > limits.maxBytes) {
            return { chunks, next, upToDate: false, closed: false };
          }
          bytes += size;
          next = segment.base + pub.offset;
          chunks.push({ position: next, payload });
        }
        if (isOwn && (pub.kind === 'close' || pub.write.closes === true)) closed = true;
        since = pub.offset;
      }
      const reachedTop = history.publications.length < remaining || since >= history.top.offset;
      if (isOwn && reachedTop) {
        return { chunks, next, upToDate: true, closed, ownTop: { offset: history.top.offset, epoch: segment.epoch } };
      }
      if (history.publications.length === 0) break;
    }
    cursor = segment.to;
  }
  // Unreachable in practice: the own segment is open-ended and returns above.
  return { chunks, next, upToDate: true, closed };
}

/** The content a publication adds to the stream (creates carry initial content too). */
export function dataOf(mode: ReturnType<typeof modeOf>, pub: DsPublication): Payload | undefined {
  if (pub.kind !== 'append' && pub.kind !== 'create') return undefined;
  return payloadOf(mode, pub.data);
}

function weight(payload: Payload): number {
  return payload.mode === 'bytes' ? payload.bytes.length : JSON.stringify(payload.messages).length;
}

function lostMessage(segment: Segment, isOwn: boolean): string {
  return isOwn
    ? 'the hub no longer keeps the stream from that offset (history retention); read from a later offset'
    : `the hub no longer keeps the inherited data from ${segment.channel} (history retention)`;
}
