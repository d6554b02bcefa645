/**
 * Server-Sent Events (PROTOCOL.md section 6): a dumb pipe from a session to a text/event-stream.
 * The one SSE-specific idea is the cursor in every `id:` line: it holds the position of every
 * channel of the connection, so a native EventSource resumes all of them by itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  CloseCode,
  UnsubscribeCode,
  closeInfo,
  cursorEntry,
  type ClientInfo,
  type DisconnectInfo,
  type Position,
} from '@herald/protocol';
import type { PublicationRecord } from '../broker/broker.js';
import { defineEncoder, type Delivery } from '../core/delivery.js';
import type { Pacer } from '../core/replay.js';
import type { Session, SessionTransport, Subscription } from '../core/session.js';
import { sendThrown } from '../http/respond.js';
import { corsHeaders, disconnectJson, type TransportContext } from './context.js';
import { drainedBelow } from './drain.js';
import { PING_TICK_MS, PingRotation } from './ping-rotation.js';
import { parseStreamRequest } from './stream-request.js';
import { batchWrite, flushThreshold, heldBytes, releaseHeld, writeBatched } from './turn-batch.js';
import { channelsJson, subscribeAll } from './subscribe-all.js';

/** `event:` and `data:` lines of a publication: the same bytes for every SSE subscriber. */
const sseBody = defineEncoder((record: PublicationRecord): string =>
  record.event === undefined ? `data: ${record.json}\n\n` : `event: ${record.event}\ndata: ${record.json}\n\n`,
);

/** The whole event for connections with a single channel, whose cursor depends only on the publication. */
const sseSingleChannelEvent = defineEncoder((record: PublicationRecord, delivery): Buffer =>
  Buffer.from(
    record.offset === 0
      ? delivery.encoded(sseBody)
      : `id: h1${cursorEntry(record.channel, record.offset, record.epoch)}\n${delivery.encoded(sseBody)}`,
  ),
);

const CRLF = Buffer.from('\r\n');

/**
 * The same event framed as one HTTP/1.1 chunk (`<hex length>CRLF<event>CRLF`). `res.write` would
 * frame it per subscriber in four socket writes; written whole, fan-out is one write per
 * subscriber (see SseStream.#chunkedSocket for when that is allowed).
 */
const sseSingleChannelChunk = defineEncoder((_record, delivery): Buffer => {
  const event = delivery.encoded(sseSingleChannelEvent);
  return Buffer.concat([Buffer.from(`${event.length.toString(16)}\r\n`), event, CRLF]);
});

const PING = Buffer.from(': ping\n\n');
/** How long a stream that was told to go may keep its socket, so the goodbye can still arrive. */
const END_GRACE_MS = 2_000;
/** How long a replay waits for a client that stopped taking it before ending it as a slow consumer. */
const REPLAY_DRAIN_MS = 10_000;

/** Each response points to its stream, so that all streams share one 'close' listener. */
const STREAM = Symbol('herald.sseStream');

/**
 * The response's 'close' means the client went away, on HTTP/1.1 (the socket closed) and on
 * HTTP/2 (the stream was reset or its session ended) alike; the socket is shared on HTTP/2.
 * Shared rather than a closure per stream: idle streams are most of what a hub holds.
 */
function onResponseClose(this: ServerResponse): void {
  (this as ServerResponse & { [STREAM]?: SseStream })[STREAM]?.clientClosed();
}

class SseStream implements SessionTransport, Pacer {
  readonly kind = 'sse' as const;
  readonly res: ServerResponse;
  readonly #ctx: TransportContext;
  /** HTTP/2 streams share their TLS socket with other streams: only the stream's own queue counts. */
  readonly #http2: boolean;
  /** How much a turn's batch may hold for this client (turn-batch.ts). */
  readonly #flushAt: number;
  /** The transport's open streams; this one leaves it when the client goes. */
  readonly #registry: PingRotation<SseStream>;
  /** This stream's slot in the transport's ping rotation. */
  pingSlot = -1;
  session: Session | undefined;
  #ended = false;

  constructor(res: ServerResponse, ctx: TransportContext, http2: boolean, registry: PingRotation<SseStream>) {
    this.res = res;
    this.#ctx = ctx;
    this.#http2 = http2;
    this.#flushAt = flushThreshold(ctx.hub.limits.maxQueueBytes);
    this.#registry = registry;
    (res as ServerResponse & { [STREAM]?: SseStream })[STREAM] = this;
  }

  clientClosed(): void {
    this.#registry.delete(this);
    if (this.session !== undefined) {
      this.#ctx.hub.endSession(this.session, closeInfo(CloseCode.Normal, 'client closed'));
    }
  }

  /**
   * What the client has not taken. On HTTP/1.1 `writableLength` already includes the socket's own
   * buffer, and the turn may hold more for the socket (turn-batch.ts); on HTTP/2 it is the stream's.
   */
  bufferedBytes(): number {
    const socket = this.res.socket;
    return this.#http2 || socket === null ? this.res.writableLength : this.res.writableLength + heldBytes(socket);
  }

  /** Replays wait for the client to take each page; one that takes nothing for REPLAY_DRAIN_MS is slow. */
  drained(): Promise<boolean> {
    // Publications may go to the socket itself (#chunkedSocket): its 'drain' is the one that comes.
    const target = this.#http2 ? this.res : (this.res.socket ?? this.res);
    this.#releaseHeld();
    return drainedBelow(target, () => this.bufferedBytes(), this.#ctx.hub.limits.maxQueueBytes, REPLAY_DRAIN_MS);
  }

  writePublication(delivery: Delivery, sub: Subscription): void {
    // Ephemeral publications carry no id, and a single channel's cursor depends only on the
    // publication: the same bytes for every such subscriber, encoded once per publication.
    if (delivery.record.offset === 0 || sub.session.subscriptions.size === 1) {
      const socket = this.#chunkedSocket();
      if (socket !== undefined) return writeBatched(socket, delivery.encoded(sseSingleChannelChunk), this.#flushAt);
      const event = delivery.encoded(sseSingleChannelEvent);
      this.#batch(event.length);
      this.res.write(event);
    } else {
      const event = `id: ${cursorOf(sub.session)}\n${delivery.encoded(sseBody)}`;
      this.#batch(event.length);
      this.res.write(event);
    }
  }

  /**
   * A publication written through the response joins its socket's batch for the turn, after what
   * the turn holds for it (HTTP/1.1; an HTTP/2 stream shares its socket).
   */
  #batch(bytes: number): void {
    const socket = this.res.socket;
    if (socket !== null && !this.#http2) batchWrite(socket, bytes, this.#flushAt);
  }

  /**
   * Writes now the chunks the turn holds for the socket (publications written to it directly):
   * every other write through the response comes after them.
   */
  #releaseHeld(): void {
    const socket = this.res.socket;
    if (socket !== null && !this.#http2) releaseHeld(socket);
  }

  /** An event that is not a publication, written through the response after what the turn holds. */
  #writeEvent(event: string | Buffer): void {
    this.#releaseHeld();
    this.res.write(event);
  }

  /**
   * The socket, when this response is an HTTP/1.1 chunked stream whose header is out and that
   * writes straight to its socket (nothing queued inside the response): then a prebuilt chunk
   * written to the socket is exactly what `res.write` would have sent, in the same order as the
   * response's own writes. Otherwise (HTTP/1.0, HTTP/2, ended) undefined, and `res.write` is used.
   */
  #chunkedSocket(): Duplex | undefined {
    const res = this.res;
    const socket = res.socket;
    if (socket === null || this.#http2 || !res.chunkedEncoding || res.writableEnded || socket.destroyed) {
      return undefined;
    }
    return res.writableLength === socket.writableLength ? socket : undefined;
  }

  writeJoinLeave(kind: 'join' | 'leave', channel: string, client: ClientInfo): void {
    this.#writeEvent(`event: herald.${kind}\ndata: ${JSON.stringify({ channel, client })}\n\n`);
  }

  /**
   * A lost position (2500) ends the stream: the reconnect resumes from the cursor and is told
   * `recovered: false`. Any other end of one channel (the backend's 2000) is a `herald.unsub` event
   * whose `id:` is the cursor without the channel; the stream goes on.
   */
  writeUnsubscribed(channel: string, code: number, reason: string): void {
    const session = this.session;
    if (session === undefined || session.closed) return;
    if (code === UnsubscribeCode.InsufficientState) {
      this.#ctx.hub.endSession(session, closeInfo(CloseCode.InsufficientState));
      return;
    }
    this.#writeEvent(
      `id: ${cursorOf(session)}\nevent: herald.unsub\ndata: ${JSON.stringify({ channel, code, reason })}\n\n`,
    );
  }

  /** A `herald.subscribed` event whose `id:` is the cursor with the new channel; its publications follow. */
  writeSubscribed(channel: string, position: Position): void {
    const session = this.session;
    if (session === undefined || session.closed || this.#ended) return;
    const data = JSON.stringify({ channel, offset: position.offset, epoch: position.epoch });
    this.#writeEvent(`id: ${cursorOf(session)}\nevent: herald.subscribed\ndata: ${data}\n\n`);
  }

  end(info: DisconnectInfo): void {
    if (this.#ended) return;
    this.#ended = true;
    const res = this.res;
    if (res.writableEnded || res.destroyed) return;
    if (!res.headersSent) {
      res.destroy();
      return;
    }
    this.#releaseHeld();
    res.end(`event: herald.disconnect\ndata: ${disconnectJson(info)}\n\n`);
    // A client that stopped reading never drains the goodbye: free its buffers after a grace period.
    setTimeout(() => res.destroy(), END_GRACE_MS).unref();
  }

  get ended(): boolean {
    return this.#ended;
  }

  ping(): void {
    if (!this.#ended) this.#writeEvent(PING);
  }
}

/** The cursor of a multi-channel connection: every channel's position, in subscription order. */
function cursorOf(session: Session): string {
  let cursor = 'h1';
  for (const sub of session.subscriptions.values()) cursor += cursorEntry(sub.channel, sub.offset, sub.epoch);
  return cursor;
}

export class SseTransport {
  readonly #ctx: TransportContext;
  /** Open streams, each sent a `: ping` once per `ssePingSeconds`, spread over it (ping-rotation.ts). */
  readonly #streams: PingRotation<SseStream>;
  readonly #pinger: NodeJS.Timeout;

  constructor(ctx: TransportContext) {
    this.#ctx = ctx;
    this.#streams = new PingRotation(ctx.ssePingSeconds * 1000, (stream) => stream.ping());
    this.#pinger = setInterval(() => this.#streams.tick(), PING_TICK_MS).unref();
  }

  close(): void {
    clearInterval(this.#pinger);
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const ctx = this.#ctx;
    const cors = corsHeaders(req, ctx.origins);
    const headerCursor = req.headers['last-event-id'];
    const cursorText =
      typeof headerCursor === 'string' && headerCursor !== ''
        ? headerCursor
        : (url.searchParams.get('lastEventId') ?? undefined);
    let request;
    try {
      request = await parseStreamRequest(ctx, req, url, cursorText, 'sse');
    } catch (error) {
      sendThrown(res, error, cors);
      return;
    }
    const http2 = req.httpVersionMajor === 2;
    const stream = new SseStream(res, ctx, http2, this.#streams);
    const session = ctx.hub.openSession(stream, request.credentials);
    stream.session = session;
    res.on('close', onResponseClose);
    let outcomes;
    try {
      outcomes = await subscribeAll(ctx.hub, session, request, true);
    } catch (error) {
      res.off('close', onResponseClose);
      ctx.hub.endSession(session, closeInfo(CloseCode.Normal, 'refused'));
      sendThrown(res, error, cors);
      return;
    }
    if (session.closed) return;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
      // HTTP/2 forbids connection-specific headers; its streams are kept open by the session.
      ...(http2 ? {} : { Connection: 'keep-alive' }),
      ...cors,
    });
    if (!http2) res.socket?.setNoDelay(true);
    // `retry:` travels in the first event's block, not alone: some clients (fetch-event-source)
    // report a block without `data:` as an empty message, which an app's JSON.parse chokes on.
    // The connected event carries the starting cursor (every channel's position before anything
    // is replayed), so a reconnect before the first publication still resumes from here instead
    // of from "now" (an extension: PROTOCOL.md only requires it on publications).
    // `pingInterval` (an extension, as in WebSocket's `connect` answer): the seconds between `: ping`
    // comments, so a client notices a silent dead path after a couple of them, not the protocol's worst case.
    res.write(
      `retry: ${ctx.sseRetryMs}\nid: ${cursorOf(session)}\nevent: herald.connected\n` +
        `data: {"clientId":"${session.id}","channels":${channelsJson(outcomes)},"pingInterval":${ctx.ssePingSeconds}}\n\n`,
    );
    this.#streams.add(stream);
    // Each channel's missed publications, paced by the client (the queue bound), then its live ones.
    for (const outcome of outcomes) {
      const live = ctx.hub.activate(outcome, stream);
      if (live !== undefined) await live;
      if (session.closed) return;
    }
  }

  /** Streams still open (drain uses it to end them in batches). */
  get size(): number {
    return this.#streams.size;
  }
}
