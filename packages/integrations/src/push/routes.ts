/**
 * Browser-facing push endpoints, authenticated with the client JWT (`Authorization: Bearer`):
 *   GET    /api/push/vapid-public-key    {publicKey}  (no token needed)
 *   POST   /api/push/subscriptions       body: the browser's PushSubscription JSON -> {id}
 *   GET    /api/push/subscriptions       {subscriptions: [{id, endpoint, createdAt, expirationTime}]}
 *   DELETE /api/push/subscriptions       body {endpoint} or ?id=... -> {removed}
 *   GET    /api/push/preferences         {muted, quietHours}
 *   PUT    /api/push/preferences         body {muted?, quietHours?} -> the stored preferences
 * The hub's origin policy and CORS apply as on the rest of /api/.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '@herald/protocol';
import { authenticate, checkOrigin, corsHeaders, type TransportContext } from '@herald/server';
import { readJson, sendError, sendJson } from '../http.js';
import type { PushNotifier } from './notifier.js';
import { DEFAULT_PREFERENCES, parsePreferences } from './preferences.js';
import type { PushSubscriptionRecord } from './store.js';

export interface PushRoutesOptions {
  /** Allow `http:` endpoints (tests, a local push service). Default false. */
  readonly allowInsecureEndpoints: boolean;
  /** Hosts a subscription endpoint may point at (`*.example.com` for subdomains, `*` for any). */
  readonly endpointHosts: readonly string[];
}

const PREFIX = '/api/push/';
const MAX_BODY_BYTES = 16 * 1024;

export function pushSubscriptionId(endpoint: string): string {
  return createHash('sha256').update(endpoint).digest('base64url');
}

export function pushRoutes(ctx: TransportContext, notifier: PushNotifier, options: PushRoutesOptions) {
  const hostAllowed = hostMatcher(options.endpointHosts);
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (!url.pathname.startsWith(PREFIX)) return false;
    const cors = corsHeaders(req);
    try {
      checkOrigin(ctx, req);
      const body = await route(req, url, ctx, notifier, options, hostAllowed);
      sendJson(res, 200, body, cors);
    } catch (error) {
      if (!(error instanceof HeraldError)) ctx.logger.error({ err: error, path: url.pathname }, 'push route failed');
      sendError(res, error, cors);
    }
    return true;
  };
}

async function route(
  req: IncomingMessage,
  url: URL,
  ctx: TransportContext,
  notifier: PushNotifier,
  options: PushRoutesOptions,
  hostAllowed: (host: string) => boolean,
): Promise<unknown> {
  const path = url.pathname.slice(PREFIX.length);
  const method = req.method ?? 'GET';
  const store = notifier.store;
  if (path === 'vapid-public-key') {
    allow(method, ['GET']);
    return { publicKey: notifier.sender.publicKey };
  }
  if (path !== 'subscriptions' && path !== 'preferences') {
    throw new HeraldError('not_found', `no route for ${method} ${url.pathname}`);
  }
  allow(method, path === 'subscriptions' ? ['GET', 'POST', 'DELETE'] : ['GET', 'PUT']);
  const userId = await user(req, ctx);
  if (path === 'preferences') {
    if (method === 'GET') return (await store.getPreferences(userId)) ?? DEFAULT_PREFERENCES;
    const preferences = parsePreferences(await readJson(req, MAX_BODY_BYTES));
    await store.setPreferences(userId, preferences);
    return preferences;
  }
  if (method === 'GET') {
    const subs = await store.listSubscriptions(userId);
    return {
      subscriptions: subs.map(({ id, endpoint, createdAt, expirationTime }) => ({
        id,
        endpoint,
        createdAt,
        expirationTime,
      })),
    };
  }
  if (method === 'POST') {
    const subscription = parseSubscription(await readJson(req, MAX_BODY_BYTES), options, hostAllowed);
    await store.addSubscription(userId, subscription, notifier.options.maxSubscriptionsPerUser);
    return { id: subscription.id };
  }
  // DELETE: by ?id= or by {endpoint} in the body.
  let id = url.searchParams.get('id');
  if (id === null) {
    const body = (await readJson(req, MAX_BODY_BYTES)) as { endpoint?: unknown } | null;
    if (typeof body?.endpoint !== 'string') throw new HeraldError('bad_request', 'give ?id= or a body {"endpoint"}');
    id = pushSubscriptionId(body.endpoint);
  }
  return { removed: await store.removeSubscription(userId, id) };
}

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new HeraldError('method_not_allowed', `use ${methods.join(' or ')}`);
}

async function user(req: IncomingMessage, ctx: TransportContext): Promise<string> {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (match === null) throw new HeraldError('unauthorized', 'Authorization: Bearer <client token> is required');
  const credentials = await authenticate(ctx, match[1]);
  if (credentials.userId === '') throw new HeraldError('unauthorized', 'a token with a user (sub) is required');
  return credentials.userId;
}

function parseSubscription(
  value: unknown,
  options: PushRoutesOptions,
  hostAllowed: (host: string) => boolean,
): PushSubscriptionRecord {
  const v = value as { endpoint?: unknown; expirationTime?: unknown; keys?: { p256dh?: unknown; auth?: unknown } };
  if (typeof v !== 'object' || v === null) throw new HeraldError('bad_request', 'body must be a PushSubscription');
  const endpoint = v.endpoint;
  let parsed: URL;
  try {
    if (typeof endpoint !== 'string' || endpoint.length > 2048) throw new Error();
    parsed = new URL(endpoint);
  } catch {
    throw new HeraldError('bad_request', 'endpoint must be a URL of at most 2048 characters');
  }
  if (parsed.protocol !== 'https:' && !(options.allowInsecureEndpoints && parsed.protocol === 'http:')) {
    throw new HeraldError('bad_request', 'endpoint must be an https URL');
  }
  if (!hostAllowed(parsed.hostname)) {
    throw new HeraldError('bad_request', `endpoint host ${parsed.hostname} is not a known push service`);
  }
  const p256dh = key(v.keys?.p256dh, 65, 'keys.p256dh');
  if (Buffer.from(p256dh, 'base64url')[0] !== 0x04) {
    throw new HeraldError('bad_request', 'keys.p256dh must be an uncompressed P-256 point');
  }
  const auth = key(v.keys?.auth, 16, 'keys.auth');
  const expirationTime = v.expirationTime ?? null;
  if (expirationTime !== null && !Number.isSafeInteger(expirationTime)) {
    throw new HeraldError('bad_request', 'expirationTime must be null or epoch milliseconds');
  }
  return {
    id: pushSubscriptionId(endpoint as string),
    endpoint: endpoint as string,
    keys: { p256dh, auth },
    createdAt: Date.now(),
    expirationTime: expirationTime as number | null,
  };
}

function key(value: unknown, bytes: number, name: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_\-+/]+=*$/.test(value)) {
    throw new HeraldError('bad_request', `${name} must be base64url`);
  }
  const decoded = Buffer.from(value, 'base64url');
  if (decoded.length !== bytes) throw new HeraldError('bad_request', `${name} must encode ${bytes} bytes`);
  return decoded.toString('base64url');
}

function hostMatcher(hosts: readonly string[]): (host: string) => boolean {
  return (host) => hosts.some((h) => h === '*' || h === host || (h.startsWith('*.') && host.endsWith(h.slice(1))));
}
