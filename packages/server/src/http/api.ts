/**
 * The server API for backends (PROTOCOL.md section 4; docs/protocol-extensions.md for
 * `/api/broadcast`, `/api/batch`, `/api/revoke` and the actions on live connections:
 * `/api/disconnect`, `/api/unsubscribe`, `/api/subscribe`, `GET /api/connections`, `GET /api/info`,
 * `GET /api/channels/{ch}/presence-stats`, `DELETE /api/channels/{ch}/history`, all API key only). The API key opens everything. A client JWT
 * opens the publishing commands (`/api/publish`, `/api/broadcast`, and those in `/api/batch`)
 * within its `publish` patterns, and (v1.1) a channel's history and presence within its
 * `channels` patterns, so SSE and long-poll clients read what WebSocket clients read;
 * `/api/channels` lists every channel and stays server-only.
 *
 * Reads take the client token where SSE takes it (the `Authorization` header, `?token=`, the
 * configured cookie) and, like a WebSocket client, a client without a token may read the hub's
 * anonymous channels. The API key is only ever taken from the header, never from a URL.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError, historyResultJson } from '@herald/protocol';
import type { ApiKey } from '../auth/api-key.js';
import { parsePosition } from '../core/params.js';
import { revocationJson } from '../revocation/revocation.js';
import type { Revocations } from '../revocation/revocations.js';
import { rpc } from '../hooks/decisions.js';
import { authenticate, checkOrigin, corsHeaders, hookClientOf, type TransportContext } from '../transports/context.js';
import { answerInTurn } from '../transports/turn-batch.js';
import { runBatch } from './api-batch.js';
import { presenceStats } from './api-connections.js';
import { API_METHODS, type ApiCaller } from './api-methods.js';
import { readJsonBody } from './body.js';
import { bearerToken, requestToken } from './credentials.js';
import { sendJson, sendThrown } from './respond.js';

const CHANNEL_ROUTE = /^\/api\/channels\/([^/]+)\/(history|presence|presence-stats)$/;
/** Reads of the connection methods that also answer GET, with their params in the query. */
const GET_METHODS: ReadonlySet<string> = new Set(['connections', 'info']);
const METHOD_ROUTE = /^\/api\/([a-z_]+)$/;
const NO_CREDENTIALS = 'Authorization: Bearer <API key or client token> is required';

export interface ApiLimits {
  /** Largest body of `POST /api/publish` (one publication). */
  readonly maxBodyBytes: number;
  /** Largest body of `POST /api/batch`, `POST /api/broadcast` and the other commands. */
  readonly maxBatchBodyBytes: number;
  /** Publications one request may make (a broadcast makes one per channel). */
  readonly maxBatchItems: number;
  readonly revocations: Revocations;
}

export class ApiRoutes {
  readonly #ctx: TransportContext;
  readonly #apiKey: ApiKey;
  readonly #limits: ApiLimits;

  constructor(ctx: TransportContext, apiKey: ApiKey, limits: ApiLimits) {
    this.#ctx = ctx;
    this.#apiKey = apiKey;
    this.#limits = limits;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const cors = corsHeaders(req, this.#ctx.origins);
    try {
      checkOrigin(this.#ctx, req);
      const body = await this.#route(req, url);
      answerInTurn(res, () => sendJson(res, 200, body, cors));
    } catch (error) {
      if (!(error instanceof HeraldError))
        this.#ctx.logger.error({ err: error, path: url.pathname }, 'api request failed');
      // Refusals under overload (429, 503) come in floods: they wait for the turn's end too.
      answerInTurn(res, () => sendThrown(res, error, cors));
    }
  }

  async #route(req: IncomingMessage, url: URL): Promise<string> {
    const path = url.pathname;
    const hub = this.#ctx.hub;
    if (path === '/api/revoke') {
      requireMethod(req, 'POST');
      await this.#requireServer(req);
      const body = await readJsonBody(req, this.#limits.maxBodyBytes);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new HeraldError('bad_request', 'body must be a JSON object');
      }
      return JSON.stringify(revocationJson(await this.#limits.revocations.revoke(body as Record<string, unknown>)));
    }
    if (path === '/api/batch') {
      requireMethod(req, 'POST');
      const caller = await this.#caller(req, url);
      const body = await readJsonBody(req, this.#limits.maxBatchBodyBytes);
      return JSON.stringify(await runBatch(hub, body, caller, this.#limits.maxBatchItems, this.#ctx.logger));
    }
    if (path === '/api/rpc') {
      // A client's call to the backend's rpc hook, for clients without a WebSocket (SSE, long-poll).
      requireMethod(req, 'POST');
      const caller = await this.#client(req, url);
      const body = await readJsonBody(req, this.#limits.maxBodyBytes);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new HeraldError('bad_request', 'body must be a JSON object');
      }
      return JSON.stringify(await rpc(this.#ctx.hooks, caller.credentials, body as Record<string, unknown>, undefined));
    }
    const command = METHOD_ROUTE.exec(path)?.[1];
    const method = command === undefined ? undefined : API_METHODS.get(command);
    if (method !== undefined && command !== undefined && GET_METHODS.has(command) && req.method === 'GET') {
      await this.#requireServer(req);
      return JSON.stringify(await method.run(hub, queryParams(url), { kind: 'server' }));
    }
    if (method !== undefined) {
      requireMethod(req, 'POST');
      const caller = await this.#caller(req, url);
      if (method.access === 'server' && caller.kind !== 'server') {
        throw new HeraldError('forbidden', 'client tokens may only publish; this needs the API key');
      }
      const limit = command === 'publish' ? this.#limits.maxBodyBytes : this.#limits.maxBatchBodyBytes;
      const body = await readJsonBody(req, limit);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new HeraldError('bad_request', 'body must be a JSON object');
      }
      const params = body as Readonly<Record<string, unknown>>;
      const cost = method.cost(params);
      if (cost > this.#limits.maxBatchItems) {
        throw new HeraldError('too_large', `at most ${this.#limits.maxBatchItems} publications per request`);
      }
      return JSON.stringify(await method.run(hub, params, caller));
    }
    if (path === '/api/channels') {
      requireMethod(req, 'GET');
      await this.#requireServer(req);
      return JSON.stringify({ channels: await hub.channels() });
    }
    const match = CHANNEL_ROUTE.exec(path);
    if (match === null) throw new HeraldError('not_found', `no route for ${req.method ?? 'GET'} ${path}`);
    let channel: string;
    try {
      channel = decodeURIComponent(match[1] as string);
    } catch {
      throw new HeraldError('bad_channel', 'channel is not validly URL-encoded');
    }
    if (match[2] === 'history' && req.method === 'DELETE') {
      await this.#requireServer(req);
      await hub.removeHistory(channel);
      return '{}';
    }
    requireMethod(req, 'GET');
    if (match[2] === 'presence-stats') {
      await this.#requireServer(req);
      return JSON.stringify(await presenceStats(hub, channel));
    }
    const caller = await this.#reader(req, url);
    // The hub checks the name, then a client's patterns (PROTOCOL.md v1.1 section 4).
    const reader = caller.kind === 'client' ? caller.credentials : undefined;
    if (match[2] === 'presence') return JSON.stringify({ clients: await hub.presence(channel, reader) });
    const history = await hub.history(channel, historyQuery(url), reader);
    return historyResultJson(
      history.publications.map((p) => p.json),
      history.top,
      history.recovered,
    );
  }

  /**
   * The caller named by `Authorization: Bearer`: the API key, else a client token. Without a
   * bearer (and with `url`), a client the connect hook accepts from its request (a session cookie).
   */
  async #caller(req: IncomingMessage, url?: URL): Promise<ApiCaller> {
    const bearer = bearerToken(req);
    if (bearer === undefined) {
      if (url !== undefined && this.#ctx.hooks?.has('connect') === true) return this.#client(req, url);
      throw new HeraldError('unauthorized', NO_CREDENTIALS);
    }
    return this.#bearer(bearer, req);
  }

  /** A client (never the API key): a token from the header, query or cookie, else the connect hook, else anonymous. */
  async #client(req: IncomingMessage, url: URL): Promise<ApiCaller & { kind: 'client' }> {
    const token = requestToken(req, url, this.#ctx.tokenCookie);
    if (token !== undefined && this.#apiKey.matches(token)) {
      throw new HeraldError('forbidden', 'this is a client endpoint: call it with a client token or session');
    }
    const credentials = await authenticate(this.#ctx, token, hookClientOf(this.#ctx, req, 'http'));
    return { kind: 'client', credentials, ...(this.#ctx.hooks === undefined ? {} : { hooks: this.#ctx.hooks }) };
  }

  async #bearer(bearer: string, req?: IncomingMessage): Promise<ApiCaller> {
    if (this.#apiKey.matches(bearer)) return { kind: 'server' };
    try {
      const client = req === undefined ? undefined : hookClientOf(this.#ctx, req, 'http');
      const credentials = await authenticate(this.#ctx, bearer, client);
      return { kind: 'client', credentials, ...(this.#ctx.hooks === undefined ? {} : { hooks: this.#ctx.hooks }) };
    } catch (error) {
      // "token is malformed" alone would leave a backend with a mistyped key guessing.
      if (!(error instanceof HeraldError) || error.code !== 'unauthorized') throw error;
      throw new HeraldError(
        'unauthorized',
        `the bearer is neither this hub's API key nor a valid client token (${error.message})`,
      );
    }
  }

  /** The caller of a read: the API key or a client token as for `#caller`, else a token from the query or cookie, else anonymous. */
  async #reader(req: IncomingMessage, url: URL): Promise<ApiCaller> {
    const bearer = bearerToken(req);
    if (bearer !== undefined) return this.#bearer(bearer, req);
    if (this.#ctx.hooks?.has('connect') === true) return this.#client(req, url);
    const token = requestToken(req, url, this.#ctx.tokenCookie);
    if (token !== undefined) return { kind: 'client', credentials: await authenticate(this.#ctx, token) };
    if (!this.#ctx.tokens.allowsAnonymous) throw new HeraldError('unauthorized', NO_CREDENTIALS);
    return { kind: 'client', credentials: this.#ctx.tokens.anonymous() };
  }

  async #requireServer(req: IncomingMessage): Promise<void> {
    const caller = await this.#caller(req);
    if (caller.kind !== 'server') {
      throw new HeraldError(
        'forbidden',
        'this needs the API key; a client token may publish, and read the history and presence of its own channels',
      );
    }
  }
}

function requireMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) throw new HeraldError('method_not_allowed', `use ${method}`);
}

/** `?user=&channel=&limit=&cursor=` as params: `limit` as a number, the rest as given. */
function queryParams(url: URL): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [name, value] of url.searchParams) {
    if (name === 'limit') {
      if (!/^\d{1,9}$/.test(value)) throw new HeraldError('bad_request', 'limit must be a positive integer');
      params.limit = Number(value);
    } else if (name === 'user' || name === 'channel' || name === 'cursor') params[name] = value;
  }
  return params;
}

function historyQuery(url: URL): { limit?: number; since?: { offset: number; epoch: string }; raw?: boolean } {
  const params = url.searchParams;
  const limitText = params.get('limit');
  const sinceText = params.get('since');
  const epoch = params.get('epoch');
  const query: { limit?: number; since?: { offset: number; epoch: string }; raw?: boolean } = {};
  const raw = params.get('raw');
  if (raw !== null) {
    if (raw !== '0' && raw !== '1') throw new HeraldError('bad_request', 'raw must be 0 or 1');
    query.raw = raw === '1';
  }
  if (limitText !== null) {
    if (!/^\d{1,9}$/.test(limitText)) throw new HeraldError('bad_request', 'limit must be a non-negative integer');
    query.limit = Number(limitText);
  }
  if (sinceText !== null) {
    if (!/^\d{1,15}$/.test(sinceText))
      throw new HeraldError('bad_request', 'since must be a non-negative integer offset');
    if (epoch === null) throw new HeraldError('bad_request', 'since needs the epoch it belongs to (epoch=...)');
    query.since = parsePosition({ offset: Number(sinceText), epoch });
  }
  return query;
}
