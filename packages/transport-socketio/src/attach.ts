/**
 * Serves Socket.IO clients (Engine.IO v4, Socket.IO protocol v5; long-polling, WebSocket and the
 * upgrade between them) on the hub's own port, under `/socket.io/`.
 *
 * The `socket.io` package does the protocol; this module only routes to it. It does not use
 * engine.io's `attach()`, which would put a second `upgrade` listener next to the hub's (the hub
 * refuses unknown upgrade paths, so both would answer). Instead the engine is created unattached,
 * upgrades come through `HeraldServer.addUpgradeHandler`, and requests under the path through
 * `HeraldServer.addRoutes`: the plugin uses the hub's extension points and nothing else. Origins, readiness, tokens and admission control follow the hub's own
 * rules: each Engine.IO session counts as one connection from its handshake until it closes.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { HeraldError } from '@herald/protocol';
import {
  authenticate,
  hookClientOf,
  isOriginAllowed,
  refuseUpgrade,
  sendError,
  type AdmissionVerdict,
  type Credentials,
  type HeraldServer,
  type TransportContext,
} from '@herald/server';
import type { Server as EngineServer, ServerOptions as EngineOptions, Socket as EngineSocket } from 'engine.io';
import { Server as SocketIoServer, type Socket } from 'socket.io';
import { SocketIoConnection } from './connection.js';
import { HERALD_EVENTS, type ConnectErrorData } from './events.js';
import { Wire } from './wire.js';

export type SocketIoTransportName = 'polling' | 'websocket';

export interface SocketIoOptions {
  /** URL path prefix. Default `/socket.io/` (what Socket.IO clients use unless told otherwise). */
  readonly path?: string;
  /** Engine.IO transports offered. Default both, polling first with the upgrade to WebSocket. */
  readonly transports?: readonly SocketIoTransportName[];
  /** Milliseconds Engine.IO waits for a pong before it drops the client. Default 20000. */
  readonly pingTimeoutMs?: number;
}

export interface SocketIoAttachment {
  /** The socket.io server, for inspection; Herald owns its `/` namespace and its middleware. */
  readonly io: SocketIoServer;
  /** Ends every Socket.IO connection and stops taking new ones (the hub's drain does this too). */
  close(): void;
}

/** Frames and poll bodies may exceed the largest `data` by this much, as on the hub's WebSocket. */
const PACKET_OVERHEAD_BYTES = 16 * 1024;

/** Where the `engine.io` that `socket.io` itself uses lives, whatever the install layout. */
const engineIo = createRequire(createRequire(import.meta.url).resolve('socket.io'))('engine.io') as {
  Server: new (options: EngineOptions) => EngineServer;
};

interface Resolved {
  readonly path: string;
  readonly transports: SocketIoTransportName[];
  readonly pingTimeoutMs: number;
}

function resolve(options: SocketIoOptions): Resolved {
  const path = options.path ?? '/socket.io/';
  if (!/^\/[A-Za-z0-9._~\-/]*\/$/.test(path)) {
    throw new TypeError('Invalid option "path": must start and end with "/" (e.g. "/socket.io/")');
  }
  const transports = [...(options.transports ?? ['polling', 'websocket'])];
  if (transports.length === 0 || !transports.every((t) => t === 'polling' || t === 'websocket')) {
    throw new TypeError('Invalid option "transports": a non-empty list of "polling" and "websocket"');
  }
  const pingTimeoutMs = options.pingTimeoutMs ?? 20_000;
  if (!Number.isInteger(pingTimeoutMs) || pingTimeoutMs < 1000 || pingTimeoutMs > 600_000) {
    throw new TypeError('Invalid option "pingTimeoutMs": must be an integer from 1000 to 600000');
  }
  return { path, transports, pingTimeoutMs };
}

export function attachSocketIo(server: HeraldServer, options: SocketIoOptions = {}): SocketIoAttachment {
  const o = resolve(options);
  const ctx = server.context;
  const hub = ctx.hub;

  const engine = new engineIo.Server({
    transports: o.transports,
    allowUpgrades: o.transports.length > 1,
    pingInterval: ctx.pingIntervalSeconds * 1000,
    pingTimeout: o.pingTimeoutMs,
    maxHttpBufferSize: hub.limits.maxMessageBytes + PACKET_OVERHEAD_BYTES,
    // Per-message compression would make engine.io frame each packet per client; long-poll
    // compression would hide bytes from the queue bound. Both off, as on the hub's WebSocket.
    perMessageDeflate: false,
    httpCompression: false,
    allowEIO3: false,
    // Engine.IO asks this for handshakes only (never for the polls or the upgrade of a session).
    allowRequest: (req, callback) => admitHandshake(req, callback),
    // CORS headers only for origins the hub's policy allows (others are refused before this).
    cors: (req, callback) =>
      callback(null, {
        origin: isOriginAllowed(ctx.origins, req.headers.origin, req.headers.host),
        // Under `origins: *` no site may read answers made with another user's cookies.
        credentials: ctx.origins.kind !== 'any',
      }),
  });
  const io = new SocketIoServer({
    path: o.path.slice(0, -1),
    serveClient: false,
    connectTimeout: ctx.connectTimeoutMs,
  });
  io.bind(engine);

  // ---- which socket carries each connection's writes (for the queue bound, wire.ts) ----------
  const sidOf = new WeakMap<IncomingMessage, string>();
  const handshakeSocket = new WeakMap<IncomingMessage, Duplex>();
  const handshakeResponse = new WeakMap<IncomingMessage, ServerResponse>();
  /** Admission slots of handshakes whose session does not exist yet (see `admitHandshake`). */
  const admissionOf = new WeakMap<IncomingMessage, () => void>();
  const wires = new Map<string, Wire>();
  const wireOf = new WeakMap<EngineSocket, Wire>();
  engine.generateId = (req: IncomingMessage): string => {
    const sid = randomBytes(15).toString('base64url');
    sidOf.set(req, sid);
    return sid;
  };
  engine.on('connection', (conn: EngineSocket) => {
    const sid = sidOf.get(conn.request);
    const wire = new Wire(conn, handshakeSocket.get(conn.request) ?? conn.request.socket, hub.limits.maxQueueBytes);
    wireOf.set(conn, wire);
    // The admission slot of the handshake now belongs to the session, whatever its transport becomes.
    const release = admissionOf.get(conn.request);
    if (release !== undefined) {
      admissionOf.delete(conn.request);
      conn.once('close', release);
    }
    if (sid === undefined) return;
    wires.set(sid, wire);
    conn.once('close', () => wires.delete(sid));
  });

  // ---- admission: a new Engine.IO session is one connection, as a WebSocket or an SSE stream --
  function admitHandshake(req: IncomingMessage, callback: (err: string | null | undefined, ok: boolean) => void): void {
    const decided = server.admit(req);
    if (decided instanceof Promise) {
      // Counted in another process (herald serve --workers): decide when it answers.
      decided.then(
        (verdict) => admitted(req, verdict, callback),
        () => callback('admission failed', false),
      );
      return;
    }
    admitted(req, decided, callback);
  }

  function admitted(
    req: IncomingMessage,
    verdict: AdmissionVerdict,
    callback: (err: string | null | undefined, ok: boolean) => void,
  ): void {
    const socket = handshakeSocket.get(req);
    const res = handshakeResponse.get(req);
    if (!verdict.ok) {
      // Engine.IO's own refusal would be 403 (polling) or 400 (WebSocket); the hub answers 429 with
      // Retry-After. Engine.IO then finds the answer sent (or the socket ended) and adds nothing.
      const error = new HeraldError('rate_limited', verdict.reason);
      const headers = { 'Retry-After': String(verdict.retryAfterSeconds) };
      if (socket !== undefined) refuseUpgrade(socket, error.code, error.message, headers);
      else if (res !== undefined) sendError(res, error.code, error.message, headers);
      callback(verdict.reason, false);
      return;
    }
    admissionOf.set(req, verdict.release);
    // A handshake that fails after this, or a client that leaves mid-way, opens no session: the
    // slot is freed when the exchange ends unless the session took it (the 'connection' above).
    (socket ?? res)?.once('close', () => {
      admissionOf.get(req)?.();
      admissionOf.delete(req);
    });
    callback(null, true);
  }

  // ---- routing -------------------------------------------------------------------------------
  // Requests under the path come through the hub's own route table (which has already copied an
  // HTTP/2 `:authority` into `host`, for the same-host origin check).
  server.addRoutes((req, res, url) => {
    if (!url.pathname.startsWith(o.path)) return false;
    onRequest(req, res);
    return true;
  });

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const refusal = unsupportedProtocol(req.url) ?? refuse(req);
    if (refusal !== undefined) return sendError(res, refusal.code, refusal.message);
    const sid = querySid(req.url);
    if (sid === undefined) handshakeResponse.set(req, res);
    else if (req.method === 'GET') wires.get(sid)?.polling(req.socket);
    engine.handleRequest(req, res);
  }

  server.addUpgradeHandler(
    o.path,
    (req, socket, head) => {
      const refusal = o.transports.includes('websocket')
        ? (unsupportedProtocol(req.url) ?? refuse(req))
        : new HeraldError('not_found', 'no WebSocket here');
      if (refusal !== undefined) return refuseUpgrade(socket, refusal.code, refusal.message);
      const sid = querySid(req.url);
      if (sid === undefined) handshakeSocket.set(req, socket);
      else wires.get(sid)?.upgrading(socket);
      engine.handleUpgrade(req, socket, head);
    },
    // Admission is decided per session in `admitHandshake`: upgrading a counted session is free.
    { ownAdmission: true },
  );

  /** Origin on every request (as for /ws and /sse); readiness for new connections only. */
  function refuse(req: IncomingMessage): HeraldError | undefined {
    if (!isOriginAllowed(ctx.origins, req.headers.origin, req.headers.host)) {
      return new HeraldError('origin_not_allowed', 'this origin is not allowed');
    }
    if (querySid(req.url) === undefined && !hub.ready) {
      return new HeraldError('not_ready', 'the hub is not accepting connections');
    }
    return undefined;
  }

  // ---- authentication: Socket.IO middleware, so a refusal is the client's `connect_error` ----
  io.use((socket, next) => {
    const verify = async (): Promise<Credentials> => {
      const token = tokenOf(socket, ctx);
      if (token === null) {
        hub.countAuthFailure();
        throw new HeraldError('unauthorized', 'auth.token must be a string');
      }
      // Without a token, the connect hook (when configured) decides from the handshake's cookie.
      const credentials = await authenticate(ctx, token, hookClientOf(ctx, socket.request, 'socketio'));
      await hub.admitUserEverywhere(credentials.userId);
      return credentials;
    };
    verify().then(
      (credentials) => {
        (socket.data as { credentials?: Credentials }).credentials = credentials;
        next();
      },
      (error: unknown) => next(connectError(error)),
    );
  });

  io.on('connection', (socket: Socket) => {
    const credentials = (socket.data as { credentials?: Credentials }).credentials;
    const wire = wireOf.get(socket.conn);
    if (credentials === undefined || wire === undefined || !socket.connected) {
      socket.disconnect(true);
      return;
    }
    try {
      new SocketIoConnection(ctx, socket, wire, credentials.hookClient).start(credentials);
    } catch (error) {
      if (error instanceof HeraldError && error.code === 'not_ready') {
        // Draining or broker lost between the handshake and here: a transport close makes the client retry.
        socket.conn.close();
        return;
      }
      // The per-user cap, reached between the middleware and here.
      socket.emit(HERALD_EVENTS.error, { event: 'connect', ...connectError(error).data });
      socket.disconnect(true);
    }
  });

  const close = (): void => {
    engine.close();
  };
  server.httpServer.once('close', close);
  return { io, close };
}

/**
 * The token: `auth.token` in the handshake, else `Authorization: Bearer`, else the configured
 * cookie; undefined when there is none (anonymous), null when `auth.token` is not a string.
 */
function tokenOf(socket: Socket, ctx: TransportContext): string | undefined | null {
  const auth = socket.handshake.auth as Record<string, unknown> | undefined;
  const fromAuth = auth?.token;
  if (fromAuth !== undefined && fromAuth !== null) return typeof fromAuth === 'string' ? fromAuth : null;
  const header = socket.handshake.headers.authorization;
  const bearer = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
  if (bearer !== undefined) return bearer;
  if (ctx.tokenCookie !== undefined) return cookie(socket.handshake.headers.cookie, ctx.tokenCookie);
  return undefined;
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of header?.split(';') ?? []) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return part.slice(eq + 1).trim();
      }
    }
  }
  return undefined;
}

function connectError(error: unknown): Error & { data: ConnectErrorData } {
  const e = error instanceof HeraldError ? error : new HeraldError('internal', 'internal error');
  return Object.assign(new Error(e.message), { data: { code: e.code, message: e.message } });
}

/**
 * Engine.IO protocol 4 only (socket.io-client 3.x and 4.x). Another version, or none (which
 * engine.io takes for 3), is refused here, before the handshake or the upgrade: engine.io's own
 * refusal is a numeric code that old clients show as a bare `xhr poll error`, and over WebSocket
 * it came after the 101, where no client reads it.
 */
function unsupportedProtocol(url: string | undefined): HeraldError | undefined {
  const q = url?.indexOf('?') ?? -1;
  const eio = url === undefined || q === -1 ? null : new URLSearchParams(url.slice(q + 1)).get('EIO');
  if (eio === '4') return undefined;
  return new HeraldError(
    'bad_request',
    `Engine.IO protocol ${eio ?? '3'} is not supported: Herald serves Engine.IO protocol 4, ` +
      'which socket.io-client 3.x and 4.x speak (socket.io-client 2.x speaks protocol 3; upgrade it)',
  );
}

function querySid(url: string | undefined): string | undefined {
  const q = url?.indexOf('?') ?? -1;
  if (url === undefined || q === -1) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get('sid') ?? undefined;
}
