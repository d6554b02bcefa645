/**
 * The admin page's endpoints. The API key is typed once into the login form and POSTed here; it
 * never appears in a URL. The answer is an HttpOnly, SameSite=Strict session cookie (path /admin)
 * plus a short-lived client token that may only subscribe to `_herald:stats`; the page opens a
 * native EventSource with that token and asks `/admin/token` for a fresh one (with the cookie)
 * when the hub ends the stream for expiry (4003).
 *
 *   POST /admin/session  {"apiKey"} or Authorization: Bearer <key>  -> cookie + {token, expiresIn, channel}
 *   POST /admin/token    (cookie)                                    -> {token, expiresIn, channel}
 *   POST /admin/logout                                               -> clears the cookie
 *   POST /admin/log-token {"channel"} (cookie)                       -> {token, expiresIn, channel}: reads that channel
 *   GET|POST|DELETE /admin/api/<route> (cookie)                      -> the server API's /api/<route>, with the API key
 *
 * The operator console (console.js) acts through `/admin/api/`: this node forwards the request to
 * its own server API over loopback with the API key added, so the page never holds the key and
 * every action is exactly what a backend could do (same validation, same errors, cluster-wide).
 * The live event log reads one channel over SSE with a token for that channel alone (the admin
 * shows in that channel's presence as `_herald-admin`, as any reader does).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isValidChannel } from '@herald/protocol';
import { ApiKey } from '@herald/server';
import { SignJWT, jwtVerify } from 'jose';
import { ADMIN_CHANNEL, ADMIN_SUBJECT } from './admin-feed.js';
import { bearer, cookie, isHttps, readSmallJson, sameOrigin, sendError, sendJson } from './page-http.js';
import { mintToken } from './token.js';

const COOKIE = 'herald_admin';
const SESSION_SECONDS = 8 * 3600;
/** Short: a leaked stream URL is worth little, and the page renews it with its cookie. */
const STREAM_TOKEN_SECONDS = 15 * 60;
/** Failed logins accepted per minute, over all clients, before answering 429. */
const MAX_FAILURES_PER_MINUTE = 20;
const SESSION_AUDIENCE = 'herald-admin-session';

export interface AdminOptions {
  readonly apiKey: string;
  readonly jwtSecret: string;
  readonly jwtAudience?: string;
  readonly jwtIssuer?: string;
}

export class AdminRoutes {
  readonly #options: AdminOptions;
  readonly #apiKey: ApiKey;
  /** Session cookies are signed with a key derived from the API key: rotating the key logs everyone out. */
  readonly #sessionKey: Uint8Array;
  #failures = { windowStart: 0, count: 0 };

  constructor(options: AdminOptions) {
    this.#options = options;
    this.#apiKey = new ApiKey(options.apiKey);
    this.#sessionKey = createHash('sha256').update(`herald-admin-session\u0000${options.apiKey}`).digest();
  }

  /** Answers the POST endpoints under /admin/; false for anything else (static files are the caller's). */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (path.startsWith('/admin/api/')) {
      if (!sameOrigin(req)) {
        sendError(res, 403, 'origin_not_allowed', 'admin requests must come from a page of this host');
        return true;
      }
      if (await this.#session(req, res)) await this.#forward(req, res, path.slice('/admin'.length));
      return true;
    }
    if (req.method === 'POST' && path === '/admin/log-token') {
      if (!sameOrigin(req)) {
        sendError(res, 403, 'origin_not_allowed', 'admin requests must come from a page of this host');
        return true;
      }
      const body = await readSmallJson(req);
      if (!(await this.#session(req, res))) return true;
      const channel = body?.channel;
      if (typeof channel !== 'string' || !isValidChannel(channel)) {
        sendError(res, 400, 'bad_channel', 'channel name is not valid');
        return true;
      }
      sendJson(res, 200, await this.#streamToken(channel));
      return true;
    }
    if (req.method !== 'POST') return false;
    if (path !== '/admin/session' && path !== '/admin/token' && path !== '/admin/logout') return false;
    if (!sameOrigin(req)) {
      sendError(res, 403, 'origin_not_allowed', 'admin requests must come from a page of this host');
      return true;
    }
    if (path === '/admin/logout') {
      sendJson(res, 200, {}, { 'Set-Cookie': this.#cookie(req, '', 0) });
      return true;
    }
    if (path === '/admin/session') await this.#login(req, res);
    else await this.#renew(req, res);
    return true;
  }

  async #login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readSmallJson(req);
    const candidate = bearer(req) ?? (typeof body?.apiKey === 'string' ? body.apiKey : undefined);
    if (this.#tooManyFailures()) {
      sendError(res, 429, 'rate_limited', 'too many failed sign-ins; wait a minute');
      return;
    }
    if (candidate === undefined || !this.#apiKey.matches(candidate)) {
      this.#failures.count++;
      sendError(res, 401, 'unauthorized', 'that is not the API key of this hub');
      return;
    }
    const session = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(ADMIN_SUBJECT)
      .setAudience(SESSION_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + SESSION_SECONDS)
      .sign(this.#sessionKey);
    sendJson(res, 200, await this.#streamToken(), { 'Set-Cookie': this.#cookie(req, session, SESSION_SECONDS) });
  }

  async #renew(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume();
    if (await this.#session(req, res)) sendJson(res, 200, await this.#streamToken());
  }

  /** Whether the request carries a valid admin session; answers 401 itself when not. */
  async #session(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const session = cookie(req, COOKIE);
    if (session === undefined || session === '') {
      req.resume();
      sendError(res, 401, 'unauthorized', 'sign in with the API key first');
      return false;
    }
    try {
      await jwtVerify(session, this.#sessionKey, { audience: SESSION_AUDIENCE, subject: ADMIN_SUBJECT });
      return true;
    } catch {
      req.resume();
      sendError(res, 401, 'unauthorized', 'the admin session expired; sign in again', {
        'Set-Cookie': this.#cookie(req, '', 0),
      });
      return false;
    }
  }

  /** The server API's answer to the same request made with the API key, over loopback to this node. */
  async #forward(req: IncomingMessage, res: ServerResponse, apiPath: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') {
      req.resume();
      sendError(res, 405, 'method_not_allowed', 'use GET, POST or DELETE');
      return;
    }
    const body = method === 'POST' ? await readSmallJson(req) : (req.resume(), undefined);
    if (method === 'POST' && body === undefined) {
      sendError(res, 400, 'bad_request', 'body must be a small JSON object');
      return;
    }
    const local = req.socket.localAddress ?? '127.0.0.1';
    const host = local.includes(':') ? `[${local}]` : local;
    const query = new URL(req.url ?? '/', 'http://x').search;
    try {
      const answer = await fetch(`http://${host}:${req.socket.localPort}${apiPath}${query}`, {
        method,
        headers: { authorization: `Bearer ${this.#options.apiKey}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      res.writeHead(answer.status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(await answer.text());
    } catch {
      sendError(res, 502, 'internal', 'this node could not reach its own server API');
    }
  }

  /** A client token for the hub's SSE that can read one channel (the stats one by default) and nothing else. */
  async #streamToken(channel: string = ADMIN_CHANNEL): Promise<{ token: string; expiresIn: number; channel: string }> {
    const o = this.#options;
    const token = await mintToken({
      secret: o.jwtSecret,
      sub: ADMIN_SUBJECT,
      channels: [channel],
      publish: [],
      ttlSeconds: STREAM_TOKEN_SECONDS,
      ...(o.jwtAudience === undefined ? {} : { audience: o.jwtAudience }),
      ...(o.jwtIssuer === undefined ? {} : { issuer: o.jwtIssuer }),
    });
    return { token, expiresIn: STREAM_TOKEN_SECONDS, channel };
  }

  #cookie(req: IncomingMessage, value: string, maxAge: number): string {
    const secure = isHttps(req) ? '; Secure' : '';
    return `${COOKIE}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure}`;
  }

  #tooManyFailures(): boolean {
    const now = Date.now();
    if (now - this.#failures.windowStart > 60_000) this.#failures = { windowStart: now, count: 0 };
    return this.#failures.count >= MAX_FAILURES_PER_MINUTE;
  }
}
