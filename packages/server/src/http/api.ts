/**
 * The server API for backends (PROTOCOL.md section 4). The API key opens everything; a client
 * JWT opens `/api/publish` only, within its `publish` patterns.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '@herald/protocol';
import type { ApiKey } from '../auth/api-key.js';
import type { Credentials } from '../core/credentials.js';
import { authenticate, checkOrigin, corsHeaders, type TransportContext } from '../transports/context.js';
import { historyJson, parsePosition } from '../transports/answers.js';
import { readJsonBody } from './body.js';
import { bearerToken } from './credentials.js';
import { sendJson, sendThrown } from './respond.js';

/** Who is calling: the backend (API key) or a client with a JWT. */
type Caller = { readonly kind: 'server' } | { readonly kind: 'client'; readonly credentials: Credentials };

const CHANNEL_ROUTE = /^\/api\/channels\/([^/]+)\/(history|presence)$/;

export class ApiRoutes {
  readonly #ctx: TransportContext;
  readonly #apiKey: ApiKey;
  readonly #maxBodyBytes: number;

  constructor(ctx: TransportContext, apiKey: ApiKey, maxBodyBytes: number) {
    this.#ctx = ctx;
    this.#apiKey = apiKey;
    this.#maxBodyBytes = maxBodyBytes;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const cors = corsHeaders(req, this.#ctx.origins);
    try {
      checkOrigin(this.#ctx, req);
      const body = await this.#route(req, url);
      sendJson(res, 200, body, cors);
    } catch (error) {
      if (!(error instanceof HeraldError))
        this.#ctx.logger.error({ err: error, path: url.pathname }, 'api request failed');
      sendThrown(res, error, cors);
    }
  }

  async #route(req: IncomingMessage, url: URL): Promise<string> {
    const path = url.pathname;
    const hub = this.#ctx.hub;
    if (path === '/api/publish') {
      requireMethod(req, 'POST');
      const caller = await this.#caller(req);
      const body = await readJsonBody(req, this.#maxBodyBytes);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new HeraldError('bad_request', 'body must be a JSON object');
      }
      const answer = await hub.publish(body, caller.kind === 'client' ? caller.credentials : undefined);
      return JSON.stringify(answer);
    }
    if (path === '/api/channels') {
      requireMethod(req, 'GET');
      await this.#requireServer(req);
      return JSON.stringify({ channels: await hub.channels() });
    }
    const match = CHANNEL_ROUTE.exec(path);
    if (match === null) throw new HeraldError('not_found', `no route for ${req.method ?? 'GET'} ${path}`);
    requireMethod(req, 'GET');
    await this.#requireServer(req);
    let channel: string;
    try {
      channel = decodeURIComponent(match[1] as string);
    } catch {
      throw new HeraldError('bad_channel', 'channel is not validly URL-encoded');
    }
    if (match[2] === 'presence') return JSON.stringify({ clients: await hub.presence(channel) });
    const history = await hub.history(channel, historyQuery(url));
    return historyJson(history.publications, history.top, history.recovered);
  }

  async #caller(req: IncomingMessage): Promise<Caller> {
    const token = bearerToken(req);
    if (token === undefined)
      throw new HeraldError('unauthorized', 'Authorization: Bearer <API key or client token> is required');
    if (this.#apiKey.matches(token)) return { kind: 'server' };
    return { kind: 'client', credentials: await authenticate(this.#ctx, token) };
  }

  async #requireServer(req: IncomingMessage): Promise<void> {
    const caller = await this.#caller(req);
    if (caller.kind !== 'server')
      throw new HeraldError('forbidden', 'client tokens may only publish; this needs the API key');
  }
}

function requireMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) throw new HeraldError('method_not_allowed', `use ${method}`);
}

function historyQuery(url: URL): { limit?: number; since?: { offset: number; epoch: string } } {
  const params = url.searchParams;
  const limitText = params.get('limit');
  const sinceText = params.get('since');
  const epoch = params.get('epoch');
  const query: { limit?: number; since?: { offset: number; epoch: string } } = {};
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
