/**
 * GET and HEAD (PROTOCOL.md 5.5 to 5.8): catch-up reads, long-polls and SSE, over the reader
 * (catch-up) and live.ts (the live tail). Headers follow the protocol: `Stream-Next-Offset` always,
 * `Stream-Up-To-Date` when caught up, `Stream-Closed` only at the end of a closed stream,
 * `Stream-Cursor` on live answers of an open stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from '@herald/server';
import { responseCursor } from './cursor.js';
import { DsError, notFound } from './errors.js';
import { followChannel, onClientGone, readerCredentials, type Tail } from './live.js';
import { formatOffset, type ReadFrom } from './offsets.js';
import { modeOf, type Mode } from './payload.js';
import type { DsPublication } from './publication.js';
import { dataOf, readStream, type Chunk, type ReadLimits, type ReadResult } from './reader.js';
import type { StreamRecord } from './record.js';
import { renderBody, sseControlEvent, sseDataEvent, type Control } from './render.js';
import { send } from './respond.js';
import type { Loaded, StreamStore } from './store.js';

export interface ReadContext {
  readonly store: StreamStore;
  readonly hub: Hub;
  readonly limits: ReadLimits;
  readonly longPollMs: number;
  readonly sseMs: number;
  /** Seconds between SSE comment lines that keep idle proxies from closing the stream. */
  readonly ssePingMs: number;
}

export interface ReadRequest {
  readonly channel: string;
  readonly loaded: Loaded;
  readonly from: ReadFrom;
  readonly headers: Record<string, string>;
  readonly userId: string;
  readonly cursor: string | null;
}

/** HEAD: the stream's metadata, without a body and without touching its TTL. */
export function headers(record: StreamRecord): Record<string, string> {
  return {
    'Content-Type': record.contentType,
    'Stream-Next-Offset': formatOffset(record.tail),
    ...(record.ttl === undefined ? {} : { 'Stream-TTL': String(record.ttl) }),
    ...(record.expiresAt === undefined ? {} : { 'Stream-Expires-At': new Date(record.expiresAt).toISOString() }),
    ...(record.closed ? { 'Stream-Closed': 'true' } : {}),
  };
}

/** The position a read starts at; 400 past the tail (an offset this stream never issued). */
export function startOf(record: StreamRecord, from: ReadFrom): number {
  if (from.kind === 'now') return record.tail;
  if (from.position > record.tail) throw new DsError(400, 'bad_request', "the offset is past the stream's tail");
  return from.position;
}

/** What every read starts with: the record, the stream's mode, the start position, a TTL reset. */
async function begin(ctx: ReadContext, r: ReadRequest): Promise<{ record: StreamRecord; mode: Mode; start: number }> {
  const { record } = r.loaded;
  const start = startOf(record, r.from);
  await ctx.store.touch(r.channel, record);
  return { record, mode: modeOf(record.contentType), start };
}

export async function catchUp(
  ctx: ReadContext,
  req: IncomingMessage,
  res: ServerResponse,
  r: ReadRequest,
): Promise<void> {
  const { record, mode, start } = await begin(ctx, r);
  if (r.from.kind === 'now') {
    const tailHeaders = {
      ...r.headers,
      ...answerHeaders(record, start, true, record.closed),
      'Cache-Control': 'no-store',
    };
    return send(res, 200, tailHeaders, renderBody(mode, []));
  }
  const result = await readStream(ctx.store.broker, r.channel, record, start, ctx.limits);
  const etag = `"${record.epoch}.${record.created}:${start}:${result.next}${result.closed && result.upToDate ? ':c' : ''}"`;
  const base = {
    ...r.headers,
    ...answerHeaders(record, result.next, result.upToDate, result.closed),
    ETag: etag,
    'Cache-Control': 'private, no-cache',
  };
  if (matches(req.headers['if-none-match'], etag)) return send(res, 304, base);
  send(res, 200, base, renderBody(mode, result.chunks));
}

export async function longPoll(ctx: ReadContext, res: ServerResponse, r: ReadRequest): Promise<void> {
  const { record, mode, start } = await begin(ctx, r);
  const cursor = responseCursor(ctx.store.now(), r.cursor);
  const answer = (chunks: readonly Chunk[], next: number, closed: boolean): void => {
    const h: Record<string, string> = {
      ...r.headers,
      ...answerHeaders(record, next, true, closed),
      'Cache-Control': 'no-cache',
    };
    if (!closed) h['Stream-Cursor'] = cursor;
    if (chunks.length === 0) send(res, 204, h);
    else send(res, 200, h, renderBody(mode, chunks));
  };
  // offset=now waits for what comes next without reading what is there (PROTOCOL.md 8).
  const result: ReadResult =
    r.from.kind === 'now' && !record.closed
      ? await tailPosition(ctx, r.channel, record)
      : await readStream(ctx.store.broker, r.channel, record, start, ctx.limits);
  if (result.deleted) throw notFound('the stream was deleted');
  if (result.chunks.length > 0 || result.closed || result.ownTop === undefined) {
    return answer(result.chunks, result.next, result.closed);
  }
  const from = result.next;
  // The closures below may run before the follow is set up: they see it through this holder.
  const live: { tail?: Tail; done: boolean } = { done: false };
  const finish = (chunks: readonly Chunk[], next: number, closed: boolean): void => {
    if (live.done) return;
    live.done = true;
    clearTimeout(timer);
    live.tail?.close();
    answer(chunks, next, closed);
  };
  const timer = setTimeout(() => finish([], from, false), ctx.longPollMs);
  onClientGone(res, () => {
    live.done = true;
    clearTimeout(timer);
    live.tail?.close();
  });
  live.tail = await followChannel(
    ctx.hub,
    'poll',
    undefined,
    readerCredentials(r.userId, r.channel),
    r.channel,
    result.ownTop,
    (pubs) => {
      const batch = liveBatch(mode, record, pubs);
      if (batch.chunks.length > 0 || batch.closed) {
        finish(batch.chunks, batch.chunks.at(-1)?.position ?? from, batch.closed);
      } else if (batch.ended) finish([], from, false);
    },
    () => finish([], from, false),
  );
  if (live.done) live.tail.close();
}

export async function sse(ctx: ReadContext, res: ServerResponse, r: ReadRequest): Promise<void> {
  const { record, mode, start } = await begin(ctx, r);
  const cursor = responseCursor(ctx.store.now(), r.cursor);
  res.writeHead(200, {
    ...r.headers,
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
    ...(mode === 'binary' ? { 'Stream-SSE-Data-Encoding': 'base64' } : {}),
  });
  const live: { tail?: Tail; ended: boolean; position: number } = { ended: false, position: start };
  const end = (): void => {
    if (live.ended) return;
    live.ended = true;
    clearTimeout(lifetime);
    clearInterval(ping);
    live.tail?.close();
    res.end();
  };
  const lifetime = setTimeout(end, ctx.sseMs);
  const ping = setInterval(() => res.write(':\n\n'), ctx.ssePingMs);
  onClientGone(res, end);
  /** Writes chunks, each data event followed by its control event; true when the stream ended. */
  const emit = (chunks: readonly Chunk[], next: number, upToDate: boolean, closed: boolean): boolean => {
    if (live.ended) return true;
    const last = chunks.length - 1;
    let text = '';
    chunks.forEach((chunk, i) => {
      text += sseDataEvent(mode, chunk.payload);
      text += sseControlEvent(control(chunk.position, i === last && upToDate, i === last && closed, cursor));
    });
    if (chunks.length === 0 && (upToDate || closed)) text += sseControlEvent(control(next, upToDate, closed, cursor));
    if (text !== '') res.write(text);
    live.position = next;
    if (closed) end();
    return closed;
  };
  let since: ReadResult['ownTop'];
  if (r.from.kind === 'now' && !record.closed) {
    const now = await tailPosition(ctx, r.channel, record);
    if (now.deleted || emit([], now.next, true, now.closed)) return end();
    since = now.ownTop;
  } else {
    for (;;) {
      const result = await readStream(ctx.store.broker, r.channel, record, live.position, ctx.limits);
      if (result.deleted) return end();
      if (emit(result.chunks, result.next, result.upToDate, result.closed && result.upToDate)) return;
      if (live.ended) return;
      if (result.upToDate) {
        since = result.ownTop;
        break;
      }
    }
  }
  if (since === undefined || live.ended) return;
  live.tail = await followChannel(
    ctx.hub,
    'sse',
    res,
    readerCredentials(r.userId, r.channel),
    r.channel,
    since,
    (pubs) => {
      const { chunks, closed, ended } = liveBatch(mode, record, pubs);
      if (chunks.length > 0 || closed) emit(chunks, chunks.at(-1)?.position ?? live.position, true, closed);
      if (ended) end();
    },
    end,
  );
  if (live.ended) live.tail.close();
}

/** What a batch of live publications brings: data, a close, or the stream's end (deleted). */
function liveBatch(
  mode: Mode,
  record: StreamRecord,
  pubs: readonly DsPublication[],
): { chunks: Chunk[]; closed: boolean; ended: boolean } {
  const chunks: Chunk[] = [];
  let closed = false;
  for (const pub of pubs) {
    if (pub.kind === 'create' || pub.kind === 'delete') return { chunks, closed, ended: true };
    const payload = dataOf(mode, pub);
    if (payload !== undefined) chunks.push({ position: record.base + pub.offset, payload });
    if (pub.kind === 'close' || pub.write.closes === true) closed = true;
  }
  return { chunks, closed, ended: false };
}

/**
 * Where the stream stands now, to follow from there without sending what is there (offset=now):
 * a read from the loaded tail whose data (written since the record was loaded) is skipped.
 */
async function tailPosition(ctx: ReadContext, channel: string, record: StreamRecord): Promise<ReadResult> {
  let result = await readStream(ctx.store.broker, channel, record, record.tail, ctx.limits);
  while (!result.upToDate) result = await readStream(ctx.store.broker, channel, record, result.next, ctx.limits);
  return { ...result, chunks: [] };
}

function control(next: number, upToDate: boolean, closed: boolean, cursor: string): Control {
  if (closed) return { streamNextOffset: formatOffset(next), upToDate: true, streamClosed: true };
  return { streamNextOffset: formatOffset(next), streamCursor: cursor, ...(upToDate ? { upToDate: true } : {}) };
}

function answerHeaders(record: StreamRecord, next: number, upToDate: boolean, closed: boolean): Record<string, string> {
  return {
    'Content-Type': record.contentType,
    'Stream-Next-Offset': formatOffset(next),
    ...(upToDate ? { 'Stream-Up-To-Date': 'true' } : {}),
    ...(closed && upToDate ? { 'Stream-Closed': 'true' } : {}),
  };
}

/** `If-None-Match`: a list of entity tags (weak ones compare by their opaque part), or `*`. */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}
