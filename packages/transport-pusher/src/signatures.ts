/**
 * Pusher's HMAC-SHA256 signatures, pure: channel authorizations (`key:signature` of
 * `socket_id:channel[:channel_data]`), user authentications (`socket_id::user::user_data`), HTTP
 * API requests (auth_key, auth_timestamp, auth_version, body_md5, auth_signature) and webhooks.
 * Every comparison is constant-time; secrets never leave this module in any message.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { PusherApp } from './apps.js';

export function sign(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex');
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `key:signature` as the app's auth endpoint makes it, checked against this app and text. */
function authMatches(app: PusherApp, auth: unknown, text: string): boolean {
  if (typeof auth !== 'string') return false;
  const colon = auth.indexOf(':');
  if (colon === -1 || auth.slice(0, colon) !== app.key) return false;
  return sameText(auth.slice(colon + 1), sign(app.secret, text));
}

/** A private, encrypted or presence subscription's `auth` (presence signs its `channel_data` too). */
export function channelAuthorized(
  app: PusherApp,
  socketId: string,
  channel: string,
  auth: unknown,
  channelData?: string,
): boolean {
  const text = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return authMatches(app, auth, text);
}

/** A `pusher:signin`'s `auth` over its `user_data`. */
export function userAuthorized(app: PusherApp, socketId: string, userData: string, auth: unknown): boolean {
  return authMatches(app, auth, `${socketId}::user::${userData}`);
}

/** How far an API request's `auth_timestamp` may be from the hub's clock, as Pusher allows. */
export const API_CLOCK_SKEW_SECONDS = 600;

/**
 * Checks a signed HTTP API request; returns what is wrong with it, or undefined when it is good.
 * `path` is the request path from `/apps/` on; `rawQuery` the query string as sent (without `?`).
 * The signature covers `METHOD\npath\nquery`, the query's parameters (without auth_signature)
 * sorted by key and joined as `key=value` with their values as the signer had them: Pusher's SDKs
 * sign unencoded values, so the check accepts the values as sent and as decoded.
 */
export function apiRequestProblem(
  app: PusherApp,
  method: string,
  path: string,
  rawQuery: string,
  body: Buffer,
  nowSeconds: number,
): string | undefined {
  const pairs: Array<{ key: string; raw: string; decoded: string }> = [];
  let signature: string | undefined;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq === -1 ? part : part.slice(0, eq)).toLowerCase();
    const raw = eq === -1 ? '' : part.slice(eq + 1);
    if (key === 'auth_signature') signature = decode(raw);
    else pairs.push({ key, raw, decoded: decode(raw) });
  }
  const get = (key: string): string | undefined => pairs.find((p) => p.key === key)?.decoded;
  if (get('auth_key') !== app.key) return 'auth_key does not name this app';
  if (signature === undefined) return 'auth_signature is required';
  if (get('auth_version') !== '1.0') return 'auth_version must be 1.0';
  const timestamp = Number(get('auth_timestamp'));
  if (!Number.isFinite(timestamp) || Math.abs(nowSeconds - timestamp) > API_CLOCK_SKEW_SECONDS) {
    return `auth_timestamp must be within ${API_CLOCK_SKEW_SECONDS} s of the server's clock`;
  }
  if (body.length > 0) {
    const md5 = createHash('md5').update(body).digest('hex');
    if (get('body_md5') !== md5) return 'body_md5 does not match the body';
  }
  pairs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const upper = method.toUpperCase();
  for (const form of ['decoded', 'raw'] as const) {
    const query = pairs.map((p) => `${p.key}=${p[form]}`).join('&');
    if (sameText(signature, sign(app.secret, `${upper}\n${path}\n${query}`))) return undefined;
  }
  return 'invalid signature';
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** A webhook body's `X-Pusher-Signature`. */
export function webhookSignature(app: PusherApp, body: string): string {
  return sign(app.secret, body);
}
