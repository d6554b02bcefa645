/**
 * The HTTP face of Durable Streams under the mount (default `/ds`): one handler that checks the
 * request whole (origin, path, credentials, headers, body size) before anything is read or
 * written, then hands it to the store (writes) or the readers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '@herald/protocol';
import { answerInTurn, checkOrigin, isOriginAllowed, type HeraldServer, type TransportContext } from '@herald/server';
import type { Logger } from 'pino';
import { AccessPolicy, type Access } from './access.js';
import { createStream } from './create.js';
import { DsError } from './errors.js';
import { ForkRegistry } from './forks.js';
import { appendRequest, createRequest, type ForkRequest } from './headers.js';
import { channelForPath, streamPath } from './names.js';
import { formatOffset, readFrom } from './offsets.js';
import { catchUp, headers as headHeaders, longPoll, sse, type ReadContext, type ReadRequest } from './reads.js';
import { ALLOWED_REQUEST_HEADERS, baseHeaders, send, sendFailure } from './respond.js';
import type { StreamRecord } from './record.js';
import { StreamStore } from './store.js';

export interface HandlerOptions {
  readonly mount: string;
  readonly access: Access;
  readonly apiKey: string;
  readonly maxBodyBytes: number;
  readonly maxReadBytes: number;
  readonly longPollMs: number;
  readonly sseMs: number;
  readonly ssePingMs: number;
}

export class DurableStreamsHandler {
  readonly store: StreamStore;
  readonly #server: HeraldServer;
  readonly #ctx: TransportContext;
  readonly #options: HandlerOptions;
  readonly #access: AccessPolicy;
  readonly #forks: ForkRegistry;
  readonly #reads: ReadContext;
  readonly #logger: Logger;

  constructor(server: HeraldServer, options: HandlerOptions) {
    this.#server = server;
    this.#ctx = server.context;
    this.#options = options;
    this.#logger = server.logger;
    this.store = new StreamStore(server.hub, server.logger);
    this.#forks = new ForkRegistry(this.store);
    this.#access = new AccessPolicy(this.#ctx, options.apiKey, options.access);
    this.#reads = {
      store: this.store,
      hub: server.hub,
      limits: { maxBytes: options.maxReadBytes, page: Math.max(1, Math.min(1000, server.hub.limits.historySize)) },
      longPollMs: options.longPollMs,
      sseMs: options.sseMs,
      ssePingMs: options.ssePingMs,
    };
  }

  /** Whether `path` is under the mount. */
  owns(path: string): boolean {
    return path === this.#options.mount || path.startsWith(`${this.#options.mount}/`);
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const base = baseHeaders(req, this.#ctx.origins);
    try {
      if (req.method === 'OPTIONS') return this.#preflight(req, res, base);
      checkOrigin(this.#ctx, req);
      const channel = channelForPath(streamPath(url.pathname.slice(this.#options.mount.length + 1)));
      const caller = await this.#access.caller(req, url);
      switch (req.method) {
        case 'PUT': {
          this.#access.requireWrite(caller, channel);
          const request = createRequest(req.headers);
          const source = request.fork === undefined ? undefined : this.#sourceChannel(request.fork);
          if (source !== undefined) this.#access.requireRead(caller, source);
          const body = await readBody(req, this.#options.maxBodyBytes);
          const outcome = await createStream(this.store, this.#forks, channel, request, body, source);
          const location: Record<string, string> = outcome.created ? { Location: absoluteUrl(req, url) } : {};
          return send(res, outcome.created ? 201 : 200, { ...base, ...createdHeaders(outcome.record), ...location });
        }
        case 'POST': {
          this.#access.requireWrite(caller, channel);
          const request = appendRequest(req.headers);
          const body = await readBody(req, this.#options.maxBodyBytes);
          const answer = await this.store.append(channel, request, body);
          // Writers append in floods: under load, a turn's acknowledgements leave together.
          return answerInTurn(res, () => send(res, answer.status, { ...base, ...answer.headers }));
        }
        case 'DELETE':
          this.#access.requireWrite(caller, channel);
          await this.store.delete(channel);
          return send(res, 204, base);
        case 'HEAD': {
          this.#access.requireRead(caller, channel);
          const { record } = await this.store.existing(channel);
          return send(res, 200, { ...base, ...headHeaders(record), 'Cache-Control': 'no-store' });
        }
        case 'GET':
          this.#access.requireRead(caller, channel);
          return await this.#get(req, res, url, channel, base, this.#access.userOf(caller));
        default:
          throw new HeraldError('method_not_allowed', 'use GET, HEAD, PUT, POST or DELETE');
      }
    } catch (error) {
      req.resume();
      sendFailure(res, error, base, this.#logger);
    }
  }

  async #get(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    channel: string,
    base: Record<string, string>,
    userId: string,
  ): Promise<void> {
    const live = url.searchParams.get('live');
    if (live !== null && live !== 'long-poll' && live !== 'sse') {
      throw new DsError(400, 'bad_request', 'live must be long-poll or sse');
    }
    const from = readFrom(url.searchParams, live !== null);
    const loaded = await this.store.existing(channel);
    const request: ReadRequest = {
      channel,
      loaded,
      from,
      headers: base,
      userId,
      cursor: url.searchParams.get('cursor'),
    };
    if (live === null) return catchUp(this.#reads, req, res, request);
    if (!this.#server.hub.ready) throw new HeraldError('not_ready', 'the hub is not accepting live reads now');
    // Live reads hold a connection: the hub's admission limits apply, as to /sse and /poll.
    const verdict = await this.#server.admit(req);
    if (!verdict.ok) {
      throw new DsError(429, 'rate_limited', verdict.reason, { 'Retry-After': String(verdict.retryAfterSeconds) });
    }
    res.once('close', verdict.release);
    return live === 'sse' ? sse(this.#reads, res, request) : longPoll(this.#reads, res, request);
  }

  #preflight(req: IncomingMessage, res: ServerResponse, base: Record<string, string>): void {
    if (!isOriginAllowed(this.#ctx.origins, req.headers.origin, req.headers.host)) {
      throw new HeraldError('origin_not_allowed', 'this origin is not allowed');
    }
    send(res, 204, {
      ...base,
      'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
      'Access-Control-Allow-Headers': ALLOWED_REQUEST_HEADERS,
      'Access-Control-Max-Age': '600',
    });
  }

  /**
   * `Stream-Forked-From`: the source's path below the mount (`/v1/stream/a`), or its full path
   * (`/ds/v1/stream/a`) or URL on this server.
   */
  #sourceChannel(fork: ForkRequest): string {
    let path = fork.from;
    if (/^https?:\/\//i.test(path)) {
      try {
        path = new URL(path).pathname;
      } catch {
        throw new DsError(400, 'bad_request', 'Stream-Forked-From is not a valid path or URL');
      }
    }
    const mount = this.#options.mount;
    if (path.startsWith(`${mount}/`)) path = path.slice(mount.length);
    return channelForPath(streamPath(path.replace(/^\/+/, '')));
  }
}

function createdHeaders(record: StreamRecord): Record<string, string> {
  return {
    'Content-Type': record.contentType,
    'Stream-Next-Offset': formatOffset(record.tail),
    ...(record.closed ? { 'Stream-Closed': 'true' } : {}),
  };
}

/** The request's URL as the client addressed it (for `Location`), without its query. */
function absoluteUrl(req: IncomingMessage, url: URL): string {
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
  const forwarded = req.headers['x-forwarded-proto'];
  const proto = typeof forwarded === 'string' && /^https?$/.test(forwarded) ? forwarded : encrypted ? 'https' : 'http';
  return `${proto}://${req.headers.host ?? 'localhost'}${url.pathname}`;
}

/** Bodies past the limit are read to their end (and dropped) up to this size, so the 413 reaches the client. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The request body, refused with 413 past `max` bytes. The rest of a refused body is read and
 * dropped (up to DRAIN_MAX_BYTES, else the connection is cut): a client still sending when the
 * answer comes would see its request fail instead of the 413.
 */
async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = Number.isFinite(declared) && declared > max;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) tooLarge = true;
    if (tooLarge) {
      if (size > DRAIN_MAX_BYTES) req.destroy();
      continue;
    }
    chunks.push(chunk);
  }
  if (tooLarge) throw new DsError(413, 'too_large', `the body is larger than ${max} bytes`);
  return Buffer.concat(chunks);
}
