/**
 * Composes the hub: the core, the three transports, the server API, health and metrics on one
 * `node:http` server, plus the sweeps that end expired tokens and the graceful drain.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode, HeraldError, closeInfo } from '@herald/protocol';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ApiKey } from './auth/api-key.js';
import { isOriginAllowed, originPolicy } from './auth/origin.js';
import { PublicKeyError } from './auth/public-keys.js';
import { TokenVerifier } from './auth/tokens.js';
import { MemoryBroker } from './broker/memory-broker.js';
import { Hub } from './core/hub.js';
import { BackendHooks } from './hooks/backend-hooks.js';
import { HookRefresher } from './hooks/refresher.js';
import { Admission, type AdmissionControl, type AdmissionVerdict } from './http/admission.js';
import { ApiRoutes } from './http/api.js';
import { closeIdleHttp2Sessions } from './http/h2-idle.js';
import { refuseUpgrade, sendError, sendJson, sendThrown } from './http/respond.js';
import { createMetrics } from './metrics.js';
import { OptionsError, resolveOptions, type HeraldOptions, type ResolvedOptions } from './options.js';
import { MemoryPresence } from './presence/memory-presence.js';
import { MemoryRevocationStore } from './revocation/memory-store.js';
import { Revocations } from './revocation/revocations.js';
import { corsHeaders, type TransportContext } from './transports/context.js';
import { PollTransport } from './transports/poll.js';
import { SseTransport } from './transports/sse.js';
import { WebSocketTransport } from './transports/websocket.js';

/** Frames may exceed the largest `data` by this much: room for the command around it. */
const FRAME_OVERHEAD_BYTES = 16 * 1024;
/** Time to send a request head; on the TLS listener also the time to finish the TLS handshake. */
const HEAD_TIMEOUT_MS = 10_000;
/** An idle keep-alive connection (HTTP/1.1), or an HTTP/2 connection with no stream, goes after this. */
const IDLE_TIMEOUT_MS = 5_000;
/** How long a drain waits for told clients to go before it cuts their sockets. */
const DRAIN_GOODBYE_MS = 2_000;

export interface DrainOptions {
  /** Sessions told to reconnect per batch. Default 500. */
  readonly batchSize?: number;
  /** Pause between batches, so reconnects spread over the other nodes. Default 50 ms. */
  readonly pauseMs?: number;
  /**
   * The least time the listener stays open after the drain begins, answering `/readyz` with 503,
   * so a load balancer's probe sees the node leave even when its clients went faster. Default 0;
   * `herald serve` drains with 1,000 ms (`HERALD_DRAIN_READINESS_MS`).
   */
  readonly readinessMs?: number;
}

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface UpgradeHandlerOptions {
  /**
   * The handler runs admission control itself through `HeraldServer.admit`, for the upgrades
   * that open a connection. Socket.IO needs this: the upgrade of a long-polling session to
   * WebSocket joins a connection that was counted at its handshake, and must not count twice.
   */
  readonly ownAdmission?: boolean;
}

interface UpgradeHandlerEntry {
  readonly handler: UpgradeHandler;
  readonly ownAdmission: boolean;
}

/** The URL of every `/ws` upgrade without a query, parsed once (it is only read, never changed). */
const PLAIN_WS_URL = new URL('/ws', 'http://herald.invalid');

/** Shared by every upgraded socket rather than a closure each. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** The verdict for a client that closed its connection while its admission was being decided. */
const CLIENT_LEFT: AdmissionVerdict = { ok: false, reason: 'the client closed its connection', retryAfterSeconds: 0 };

export class HeraldServer {
  readonly hub: Hub;
  /** Plain HTTP/1.1, or with `tls` an HTTPS server speaking HTTP/2 and HTTP/1.1 (upgrades come over 1.1). */
  readonly httpServer: Server | Http2SecureServer;
  readonly metrics: Registry;
  readonly options: Readonly<ResolvedOptions>;
  readonly logger: Logger;
  /** Revoked tokens on this node, fed by the revocation store (`POST /api/revoke`). */
  readonly revocations: Revocations;
  /** Extra upgrade handlers by path (the Socket.IO adapter uses `/socket.io/`). */
  readonly #upgradeHandlers = new Map<string, UpgradeHandlerEntry>();
  /** Extra HTTP routes added at run time (integrations), tried before the server API; see `addRoutes`. */
  readonly #routeHandlers: Array<NonNullable<HeraldOptions['routes']>> = [];
  readonly #ctx: TransportContext;
  readonly #ws: WebSocketTransport;
  readonly #sse: SseTransport;
  readonly #poll: PollTransport;
  readonly #api: ApiRoutes;
  /** Per-address and hub-wide limits on new connections (HTTP 429 before any upgrade or stream). */
  readonly #admission: AdmissionControl;
  /** TLS sockets of the HTTPS server, which has no closeAllConnections() to end them on drain. */
  readonly #tlsSockets = new Set<Duplex>();
  /**
   * Sockets that upgrade handlers (Socket.IO) took. The hub's own /ws cuts its sockets itself; a
   * plugin's may wait for a close handshake its peer never answers, so the drain cuts what is left.
   */
  readonly #pluginSockets = new Set<Duplex>();
  readonly #forgetPluginSocket: (this: Duplex) => void;
  #expirySweep: NodeJS.Timeout | undefined;
  /** Extends hook-authenticated connections before they expire (the refresh hook). */
  readonly #refresher: HookRefresher | undefined;
  #draining: Promise<void> | undefined;
  #starting: Promise<void> | undefined;

  constructor(options: HeraldOptions) {
    const o = resolveOptions(options);
    this.options = o;
    this.logger = o.logger ?? pino({ level: 'silent' });
    const broker = o.broker ?? new MemoryBroker({ size: o.historySize, ttlSeconds: o.historyTtlSeconds });
    this.hub = new Hub({
      broker,
      presence: o.presence ?? new MemoryPresence(),
      logger: this.logger,
      ...(o.node === undefined ? {} : { node: o.node }),
      streamWindowMs: o.streamWindowMs,
      limits: {
        maxMessageBytes: o.maxMessageBytes,
        historySize: o.historySize,
        maxQueueBytes: o.maxQueueBytes,
        ephemeralDropBytes: Math.floor(o.maxQueueBytes / 2),
        maxSubscriptionsPerSession: o.maxSubscriptionsPerConnection,
        maxSessionsPerUser: o.maxConnectionsPerUser,
      },
    });
    this.#admission =
      o.admission ??
      new Admission({
        maxConnectionsPerIp: o.maxConnectionsPerIp,
        connectionRatePerIp: o.connectionRatePerIp,
        connectionRate: o.connectionRate,
      });
    this.revocations = new Revocations({
      store: o.revocations ?? new MemoryRevocationStore(),
      hub: this.hub,
      policy: { maxLifetimeSeconds: o.jwtMaxLifetimeSeconds, leewaySeconds: o.jwtLeewaySeconds },
      logger: this.logger,
    });
    const hooks = o.hooks === undefined ? undefined : new BackendHooks(o.hooks, this.logger);
    this.#refresher = hooks?.has('refresh') === true ? new HookRefresher(this.hub, hooks) : undefined;
    this.#ctx = {
      ...(hooks === undefined ? {} : { hooks }),
      hub: this.hub,
      tokens: tokenVerifier(o, this.revocations),
      origins: originPolicy(o.origins),
      logger: this.logger,
      tokenCookie: o.tokenCookie,
      pingIntervalSeconds: o.pingIntervalSeconds,
      sseRetryMs: o.sseRetryMs,
      ssePingSeconds: o.ssePingSeconds,
      connectTimeoutMs: o.connectTimeoutMs,
      commandRate: o.commandRate,
    };
    this.#ws = new WebSocketTransport(this.#ctx, o.maxMessageBytes + FRAME_OVERHEAD_BYTES);
    this.#sse = new SseTransport(this.#ctx);
    this.#poll = new PollTransport(this.#ctx);
    this.#api = new ApiRoutes(this.#ctx, new ApiKey(o.apiKey), {
      maxBodyBytes: o.maxMessageBytes + FRAME_OVERHEAD_BYTES,
      maxBatchBodyBytes: o.maxBatchBodyBytes,
      maxBatchItems: o.maxBatchItems,
      revocations: this.revocations,
    });
    this.metrics = createMetrics(this.hub);
    hooks?.register(this.metrics);
    const pluginSockets = this.#pluginSockets;
    this.#forgetPluginSocket = function (this: Duplex) {
      pluginSockets.delete(this);
    };
    const onRequest = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void =>
      this.#onRequest(req, res);
    // With allowHTTP1, HTTP/1.1 connections on the TLS server go through node:http's own
    // connection handling, which reads these timeout fields from the server object too (the
    // checking interval when it starts listening).
    // Node enforces headersTimeout/requestTimeout only every connectionsCheckingInterval (30 s by
    // default): a slowloris client would otherwise keep its socket for the timeout plus up to 30 s.
    // A TLS handshake may otherwise take 120 s (Node's default), silent or dribbled.
    const server: Server | Http2SecureServer =
      o.tls === undefined
        ? createServer({ connectionsCheckingInterval: 1_000 }, onRequest)
        : createSecureServer(
            { allowHTTP1: true, cert: o.tls.cert, key: o.tls.key, handshakeTimeout: HEAD_TIMEOUT_MS },
            onRequest,
          );
    // Slow or silent clients must not hold sockets open: bounded time to send headers and request.
    Object.assign(server, {
      headersTimeout: HEAD_TIMEOUT_MS,
      requestTimeout: 30_000,
      keepAliveTimeout: IDLE_TIMEOUT_MS,
      connectionsCheckingInterval: 1_000,
      // node:http's default, which the TLS server's HTTP/1.1 lacks: an HTTP/1.1 request without
      // Host is a 400 (RFC 9112 section 3.2), on either listener.
      requireHostHeader: true,
    });
    if (o.tls !== undefined) {
      closeIdleHttp2Sessions(server as Http2SecureServer, IDLE_TIMEOUT_MS);
      server.on('secureConnection', (socket: Duplex) => {
        this.#tlsSockets.add(socket);
        socket.once('close', () => this.#tlsSockets.delete(socket));
      });
    }
    this.httpServer = server;
    this.httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onUpgrade(req, socket, head),
    );
    this.httpServer.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      // On the TLS listener this also hears TLS errors (handshake timeout, a truncated or bad
      // handshake). Those sockets cannot be answered in HTTP: the answer would wait behind a
      // handshake that never finishes, and the socket with it. Cut them.
      if (o.tls !== undefined && !this.#tlsSockets.has(socket)) {
        socket.destroy();
        return;
      }
      // Say which limit was hit where HTTP has a status for it; any other parse error is a 400.
      const status =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? '408 Request Timeout'
            : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      else socket.destroy();
    });
  }

  /**
   * Starts the hub, its broker and the token sweeps without listening: for a hub embedded in an
   * application's own server (`attachHerald`, `heraldFetchHandler`). Idempotent; `listen` calls it.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    await this.hub.start();
    await this.revocations.start();
    if (!(await this.#ctx.tokens.prefetchKeys())) {
      this.logger.warn({ jwksUrl: this.options.jwksUrl }, 'the JWKS could not be fetched at start; tokens wait for it');
    }
    this.#expirySweep = setInterval(() => this.#endExpired(), 1_000).unref();
  }

  /** Starts the hub and its broker, then listens. Resolves with the bound address. */
  async listen(port: number, host: string): Promise<AddressInfo> {
    await this.start();
    await new Promise<void>((resolve, reject) => {
      this.httpServer.once('error', reject);
      this.httpServer.listen(port, host, () => {
        this.httpServer.off('error', reject);
        resolve();
      });
    });
    return this.httpServer.address() as AddressInfo;
  }

  /** What transports share (core, token checks, origin policy); for transport plugins like Socket.IO. */
  get context(): TransportContext {
    return this.#ctx;
  }

  /** Lets another protocol (Socket.IO) take upgrades under a path prefix. */
  addUpgradeHandler(pathPrefix: string, handler: UpgradeHandler, options: UpgradeHandlerOptions = {}): void {
    this.#upgradeHandlers.set(pathPrefix, { handler, ownAdmission: options.ownAdmission === true });
  }

  /**
   * Admission control (the per-address cap and the connection rates) for a connection that a
   * plugin opens outside the hub's own routes, such as a Socket.IO session. When admitted, call
   * `release` once the connection ends; when refused, answer 429 `rate_limited` with
   * `Retry-After: retryAfterSeconds`, as the hub does. Admits everything when no limit is set.
   * A promise when the limits are counted in another process (`admission` option): await it.
   */
  admit(req: IncomingMessage): AdmissionVerdict | Promise<AdmissionVerdict> {
    const verdict = this.#admission.admit(req.socket?.remoteAddress);
    if (!(verdict instanceof Promise)) return verdict;
    // Decided in another process: a client that left meanwhile gives its slot back here, once
    // for every caller, rather than holding it with nothing left to release it on close.
    return verdict.then((v) => {
      if (!v.ok || req.socket?.destroyed !== true) return v;
      v.release();
      return CLIENT_LEFT;
    });
  }

  /**
   * Adds HTTP routes (for example `/api/push/...` of the integrations), tried in order before the
   * server API and the `routes` option. A handler returns true when it answered the request.
   */
  addRoutes(handler: NonNullable<HeraldOptions['routes']>): () => void {
    this.#routeHandlers.push(handler);
    return () => {
      const i = this.#routeHandlers.indexOf(handler);
      if (i !== -1) this.#routeHandlers.splice(i, 1);
    };
  }

  /**
   * Graceful stop: readiness goes 503, no new connections, every client is told to reconnect
   * elsewhere (1001) in batches so they do not all land on the other nodes at once, then the
   * broker closes. Publications acknowledged before this are stored; nothing in flight is lost.
   */
  drain(options: DrainOptions = {}): Promise<void> {
    this.#draining ??= this.#drain(options.batchSize ?? 500, options.pauseMs ?? 50, options.readinessMs ?? 0);
    return this.#draining;
  }

  async close(): Promise<void> {
    await this.drain({ batchSize: Number.MAX_SAFE_INTEGER, pauseMs: 0 });
  }

  async #drain(batchSize: number, pauseMs: number, readinessMs: number): Promise<void> {
    // Not ready from here on: /readyz answers 503 and new connections are refused with 503 while
    // the listener stays open for the load balancer to see it, until the clients have gone.
    this.hub.stopAccepting();
    const unreadyUntil = Date.now() + readinessMs;
    const goodbye = closeInfo(CloseCode.GoingAway);
    let sessions = this.hub.sessions();
    while (sessions.length > 0) {
      for (const session of sessions.slice(0, batchSize)) this.hub.endSession(session, goodbye);
      sessions = sessions.slice(batchSize);
      if (sessions.length > 0 && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    clearInterval(this.#expirySweep);
    this.#sse.close();
    // Give goodbyes time to arrive: wait for the clients to close (WebSocket close handshakes, SSE
    // responses ending), but no longer than the transports' own grace before they cut sockets.
    const goodbyeDeadline = Date.now() + DRAIN_GOODBYE_MS;
    await new Promise((r) => setTimeout(r, 50));
    while ((this.#ws.size > 0 || this.#sse.size > 0 || this.#pluginSockets.size > 0) && Date.now() < goodbyeDeadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const unreadyRest = unreadyUntil - Date.now();
    if (unreadyRest > 0) await new Promise((r) => setTimeout(r, unreadyRest));
    const closed = new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
    this.#ws.close();
    await this.revocations.close();
    await this.hub.close();
    if ('closeAllConnections' in this.httpServer) this.httpServer.closeAllConnections();
    // Whatever is still open had its goodbye and its grace: a peer that never completes a close
    // (or stopped reading) must not hold the process. httpServer.close() waits for every socket.
    for (const socket of this.#pluginSockets) socket.destroy();
    for (const socket of this.#tlsSockets) socket.destroy();
    await closed;
  }

  #endExpired(): void {
    this.#refresher?.sweep();
    for (const session of [...this.hub.expiredSessions()]) {
      this.hub.endSession(session, closeInfo(CloseCode.TokenExpired));
    }
  }

  /**
   * Answers one HTTP request with the hub's routes (`/sse`, `/poll`, `/api/...`, health, metrics),
   * 404 for any other path. The seam for embedding: `req.url` is the path as the hub sees it,
   * with any prefix of the host application already removed.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#onRequest(req, res);
  }

  /** Takes one upgrade request (`/ws`, or a plugin's path such as `/socket.io/`); see `handleRequest`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#onUpgrade(req, socket, head);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroyOnError);
    // This runs in an event listener: anything thrown here would end the process. A request
    // target like `//[` is enough to make `new URL` throw.
    let url: URL;
    try {
      url = req.url === '/ws' ? PLAIN_WS_URL : new URL(req.url ?? '/', 'http://herald.invalid');
    } catch {
      return refuseUpgrade(socket, 'bad_request', 'the request URL is not valid');
    }
    const plugin = url.pathname === '/ws' ? undefined : this.#upgradeHandlerFor(url.pathname);
    // Without limits there is nothing to track: no peer-address lookup, no listener per connection.
    if (this.#admission.enabled && plugin?.ownAdmission !== true) {
      const verdict = this.admit(req);
      if (verdict instanceof Promise) {
        // Counted in another process: the socket waits unread (its bytes stay buffered) meanwhile.
        verdict.then(
          (v) => this.#admitted(v, socket) && this.#upgrade(req, socket, head, url, plugin),
          () => socket.destroy(),
        );
        return;
      }
      if (!this.#admitted(verdict, socket)) return;
    }
    this.#upgrade(req, socket, head, url, plugin);
  }

  /** Answers a refused upgrade with 429; ties an admitted one's release to its socket. */
  #admitted(verdict: AdmissionVerdict, socket: Duplex): boolean {
    if (!verdict.ok) {
      refuseUpgrade(socket, 'rate_limited', verdict.reason, { 'Retry-After': String(verdict.retryAfterSeconds) });
      return false;
    }
    socket.once('close', verdict.release);
    return true;
  }

  #upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
    plugin: UpgradeHandlerEntry | undefined,
  ): void {
    try {
      if (url.pathname === '/ws') {
        this.#ws.handleUpgrade(req, socket, head, url);
        return;
      }
      if (plugin !== undefined) {
        this.#pluginSockets.add(socket);
        socket.on('close', this.#forgetPluginSocket);
        return plugin.handler(req, socket, head);
      }
      refuseUpgrade(socket, 'not_found', `no WebSocket endpoint at ${url.pathname}`);
    } catch (error) {
      this.logger.error({ err: error }, 'upgrade failed');
      socket.destroy();
    }
  }

  #upgradeHandlerFor(path: string): UpgradeHandlerEntry | undefined {
    for (const [prefix, entry] of this.#upgradeHandlers) if (path.startsWith(prefix)) return entry;
    return undefined;
  }

  /** Admission for an SSE stream or a poll: answers 429 itself and returns false when refused. */
  async #admit(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const verdict = await this.admit(req);
    if (!verdict.ok) {
      sendError(res, 'rate_limited', verdict.reason, {
        'Retry-After': String(verdict.retryAfterSeconds),
        ...corsHeaders(req, this.#ctx.origins),
      });
      return false;
    }
    res.once('close', verdict.release);
    return true;
  }

  #onRequest(h2req: IncomingMessage | Http2ServerRequest, h2res: ServerResponse | Http2ServerResponse): void {
    // HTTP/2 requests come as node:http2 compat objects, which offer what the routes use (headers,
    // method, url, body stream, writeHead/write/end, writableLength, 'close'). HTTP/2 carries the
    // host in `:authority`: copy it to `host` so the same-host origin check works alike.
    const authority = h2req.headers[':authority'];
    if (h2req.httpVersionMajor === 2 && h2req.headers.host === undefined && typeof authority === 'string') {
      h2req.headers.host = authority;
    }
    const req = h2req as IncomingMessage;
    const res = h2res as ServerResponse;
    this.#route(req, res).catch((error: unknown) => {
      if (!(error instanceof HeraldError)) this.logger.error({ err: error }, 'request failed');
      sendThrown(res, error);
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://herald.invalid');
    } catch {
      return sendError(res, 'bad_request', 'the request URL is not valid');
    }
    const path = url.pathname;
    if (req.method === 'OPTIONS' && (path === '/sse' || path === '/poll' || path.startsWith('/api/'))) {
      return this.#preflight(req, res);
    }
    switch (path) {
      case '/healthz':
        return sendJson(res, 200, '{"status":"ok"}');
      case '/readyz':
        return this.hub.ready
          ? sendJson(res, 200, '{"status":"ready"}')
          : sendError(res, 'not_ready', 'the hub is starting, draining or has lost its broker');
      case '/metrics': {
        const own = this.options.metricsText;
        const text = own === undefined ? await this.metrics.metrics() : await own();
        res.writeHead(200, { 'Content-Type': this.metrics.contentType });
        res.end(text);
        return;
      }
      case '/sse':
        if (req.method !== 'GET') return sendError(res, 'method_not_allowed', 'use GET');
        if (this.#admission.enabled && !(await this.#admit(req, res))) return;
        return this.#sse.handle(req, res, url);
      case '/poll':
        if (req.method !== 'GET') return sendError(res, 'method_not_allowed', 'use GET');
        if (this.#admission.enabled && !(await this.#admit(req, res))) return;
        return this.#poll.handle(req, res, url);
      case '/ws':
        return sendError(res, 'bad_request', 'this endpoint needs a WebSocket upgrade');
    }
    for (const handler of this.#routeHandlers) if (await handler(req, res, url)) return;
    if (path.startsWith('/api/')) return this.#api.handle(req, res, url);
    if (this.options.routes !== undefined && (await this.options.routes(req, res, url))) return;
    sendError(res, 'not_found', `no route for ${req.method ?? 'GET'} ${path}`);
  }

  #preflight(req: IncomingMessage, res: ServerResponse): void {
    if (!isOriginAllowed(this.#ctx.origins, req.headers.origin, req.headers.host)) {
      return sendError(res, 'origin_not_allowed', 'this origin is not allowed');
    }
    res.writeHead(204, {
      ...corsHeaders(req, this.#ctx.origins),
      'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
      'Access-Control-Allow-Headers': 'Authorization, Content-Type, Last-Event-ID',
      'Access-Control-Max-Age': '600',
    });
    res.end();
  }
}

/** The token checks the options ask for; a configured key that cannot be used names its option. */
function tokenVerifier(o: Readonly<ResolvedOptions>, revocations: Revocations): TokenVerifier {
  try {
    return new TokenVerifier({
      ...(o.jwtSecret === undefined ? {} : { secret: o.jwtSecret }),
      ...(o.jwtPublicKey === undefined ? {} : { publicKey: o.jwtPublicKey }),
      ...(o.jwksUrl === undefined
        ? {}
        : { jwks: { url: o.jwksUrl, cacheSeconds: o.jwksCacheSeconds, cooldownSeconds: o.jwksCooldownSeconds } }),
      leewaySeconds: o.jwtLeewaySeconds,
      maxLifetimeSeconds: o.jwtMaxLifetimeSeconds,
      anonymousChannels: o.anonymousChannels,
      ...(o.jwtAudience === undefined ? {} : { audience: o.jwtAudience }),
      ...(o.jwtIssuer === undefined ? {} : { issuer: o.jwtIssuer }),
      revocations,
    });
  } catch (error) {
    if (error instanceof PublicKeyError) throw new OptionsError('jwtPublicKey', error.message);
    throw error;
  }
}
