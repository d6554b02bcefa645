/**
 * pusher-js's HTTP fallbacks, `xhr_streaming` and `xhr_polling`, under
 * `/pusher/app/{key}/{server}/{session}/{xhr_streaming | xhr | xhr_send}` (pusher-js's `httpPath`
 * is `/pusher` unless set). Every request is a POST: receive requests (`xhr_streaming`, `xhr`)
 * carry frames to the client (http-session.ts), `xhr_send` carries a JSON list of messages from it.
 *
 * Any node answers any request: a session lives on the node that opened it, and a request that
 * lands on another node is relayed to it through the broker (relay.ts), so no sticky sessions
 * are needed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '@herald/protocol';
import { checkOrigin, corsHeaders, readBodyBytes, type AdmissionVerdict, type TransportContext } from '@herald/server';
import type { PusherApps } from './apps.js';
import { PusherConnection, type PusherHooks } from './connection.js';
import { HttpSession, type Receiver } from './http-session.js';
import type { Relay } from './relay.js';
import { checkHandshake } from './websocket.js';

export type ReceiveKind = 'xhr_streaming' | 'xhr';

interface Local {
  readonly session: HttpSession;
  readonly connection: PusherConnection;
  /** The admission slot the session holds from its first request until it ends. */
  readonly release: () => void;
}

/** The hub's admission control (`HeraldServer.admit`): a fallback session counts as one connection. */
export type Admit = (req: IncomingMessage) => AdmissionVerdict | Promise<AdmissionVerdict>;

const PATH = /^\/pusher\/app\/([^/]+)\/(\d{1,6})\/([A-Za-z0-9_-]{1,64})\/(xhr_streaming|xhr|xhr_send)$/;

export class PusherFallback {
  readonly #ctx: TransportContext;
  readonly #apps: PusherApps;
  readonly #hooks: PusherHooks;
  readonly #activityTimeoutSeconds: number;
  readonly #sessions = new Map<string, Local>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #maxBodyBytes: number;
  readonly #admit: Admit;
  relay: Relay | undefined;

  constructor(
    ctx: TransportContext,
    apps: PusherApps,
    hooks: PusherHooks,
    activityTimeoutSeconds: number,
    admit: Admit,
  ) {
    this.#ctx = ctx;
    this.#admit = admit;
    this.#apps = apps;
    this.#hooks = hooks;
    this.#activityTimeoutSeconds = activityTimeoutSeconds;
    this.#maxBodyBytes = ctx.hub.limits.maxMessageBytes + 16 * 1024;
    this.#sweeper = setInterval(() => this.#sweep(), 1_000).unref();
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Answers a request under `/pusher/`; false when it is not a fallback path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const match = PATH.exec(url.pathname);
    if (match === null) return false;
    const cors = corsHeaders(req, this.#ctx.origins);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': 'Content-Type',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return true;
    }
    const [, key, server, id, kind] = match as unknown as [string, string, string, string, string];
    try {
      checkOrigin(this.#ctx, req);
      if (req.method !== 'POST') throw new HeraldError('method_not_allowed', 'use POST');
      // pusher-js sends `xhr_send` without the connection's query: only receive requests carry `protocol`.
      const query = kind === 'xhr_send' ? '?protocol=7' : url.search;
      const handshake = checkHandshake(this.#apps, new URL(`/app/${key}${query}`, 'http://herald.invalid'));
      if (!handshake.ok) {
        // As over WebSocket: the refusal is a close frame pusher-js acts on.
        answerFrames(res, cors, `c${JSON.stringify([handshake.code, handshake.message])}\n`);
        return true;
      }
      const sessionKey = `${handshake.app.key}/${server}/${id}`;
      if (kind === 'xhr_send') await this.#send(req, res, cors, sessionKey);
      else await this.#receive(req, res, cors, sessionKey, handshake.app.key, kind as ReceiveKind);
    } catch (error) {
      const e = error instanceof HeraldError ? error : new HeraldError('internal', 'internal error');
      if (!res.headersSent) {
        res.writeHead(e.code === 'origin_not_allowed' ? 403 : e.code === 'not_found' ? 404 : 400, {
          ...cors,
          'Content-Type': 'text/plain; charset=utf-8',
        });
      }
      res.end(e.message);
    }
    return true;
  }

  async #receive(
    req: IncomingMessage,
    res: ServerResponse,
    cors: Record<string, string>,
    sessionKey: string,
    appKey: string,
    kind: ReceiveKind,
  ): Promise<void> {
    const streaming = kind === 'xhr_streaming';
    const receiver = responseReceiver(res, cors, streaming);
    const local = this.#sessions.get(sessionKey);
    if (local !== undefined) return this.attachLocal(local.session, receiver, res);
    // Another node may hold the session: it then answers through this request.
    if (this.relay !== undefined && (await this.relay.receiveRemote(sessionKey, receiver, res))) return;
    if (!this.#ctx.hub.ready) throw new HeraldError('not_ready', 'the hub is not accepting connections');
    const app = this.#apps.byKey(appKey);
    if (app === undefined) throw new HeraldError('not_found', 'unknown app');
    const verdict = await this.#admit(req);
    if (!verdict.ok) {
      res.writeHead(429, { ...cors, 'Retry-After': String(verdict.retryAfterSeconds), 'Content-Type': 'text/plain' });
      res.end(verdict.reason);
      return;
    }
    const session = new HttpSession(() => this.#forget(sessionKey));
    const connection = new PusherConnection(this.#ctx, app, session, this.#hooks);
    try {
      connection.start(this.#activityTimeoutSeconds);
    } catch (error) {
      verdict.release();
      throw error;
    }
    this.#sessions.set(sessionKey, { session, connection, release: verdict.release });
    this.relay?.announce(sessionKey);
    receiver.write('o\n');
    if (streaming) this.attachLocal(session, receiver, res);
    else receiver.end();
  }

  async #send(
    req: IncomingMessage,
    res: ServerResponse,
    cors: Record<string, string>,
    sessionKey: string,
  ): Promise<void> {
    const messages = parseMessages(await readBodyBytes(req, this.#maxBodyBytes));
    const local = this.#sessions.get(sessionKey);
    if (local !== undefined) this.deliverLocal(sessionKey, messages);
    else if (this.relay === undefined || !(await this.relay.sendRemote(sessionKey, messages))) {
      throw new HeraldError('not_found', 'no such session');
    }
    res.writeHead(204, cors);
    res.end();
  }

  /**
   * A receive request for a session of this node (from this node, or relayed from another).
   * `closeSignal` is the response (its 'close' says the client went or the answer is out), not
   * the request, whose 'close' only says its body was read.
   */
  attachLocal(
    session: HttpSession,
    receiver: Receiver,
    closeSignal: { once(event: 'close', f: () => void): unknown },
  ): void {
    closeSignal.once('close', () => session.detach(receiver));
    session.attach(receiver);
  }

  /** The session of this node with this key, if any (relay.ts). */
  local(sessionKey: string): HttpSession | undefined {
    return this.#sessions.get(sessionKey)?.session;
  }

  /** Messages from the client of a session of this node. */
  deliverLocal(sessionKey: string, messages: readonly string[]): void {
    const local = this.#sessions.get(sessionKey);
    if (local === undefined) return;
    local.session.idleSince = Date.now();
    for (const text of messages) local.connection.receive(text);
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const { connection, release } of this.#sessions.values()) {
      connection.closed('hub closing');
      release();
    }
    this.#sessions.clear();
  }

  #forget(sessionKey: string): void {
    const local = this.#sessions.get(sessionKey);
    if (local === undefined) return;
    this.#sessions.delete(sessionKey);
    local.release();
    this.relay?.retire(sessionKey);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, { session, connection }] of this.#sessions) {
      if (session.tick(now)) {
        connection.closed('the client stopped polling');
        this.#forget(key);
      }
    }
  }
}

/** A receive request's response as a receiver: the head goes out with the first frame. */
function responseReceiver(res: ServerResponse, cors: Record<string, string>, streaming: boolean): Receiver {
  const head = (): void => {
    if (res.headersSent) return;
    res.writeHead(200, {
      ...cors,
      'Content-Type': 'application/javascript; charset=UTF-8',
      'Cache-Control': 'no-store, no-cache, must-revalidate, max-age=0',
      // Proxies must not hold a stream back to buffer it.
      'X-Accel-Buffering': 'no',
    });
  };
  return {
    streaming,
    write: (text) => {
      if (res.writableEnded) return;
      head();
      res.write(text);
    },
    buffered: () => res.writableLength,
    end: () => {
      if (res.writableEnded) return;
      head();
      res.end();
    },
  };
}

function answerFrames(res: ServerResponse, cors: Record<string, string>, frames: string): void {
  res.writeHead(200, { ...cors, 'Content-Type': 'application/javascript; charset=UTF-8', 'Cache-Control': 'no-store' });
  res.end(frames);
}

/** `xhr_send`'s body: a JSON list of messages, each a JSON text (an empty list is a heartbeat). */
export function parseMessages(body: Buffer): string[] {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8') || '[]');
  } catch {
    throw new HeraldError('bad_request', 'the body must be a JSON list of messages');
  }
  if (!Array.isArray(value) || !value.every((m) => typeof m === 'string')) {
    throw new HeraldError('bad_request', 'the body must be a JSON list of messages');
  }
  return value as string[];
}
