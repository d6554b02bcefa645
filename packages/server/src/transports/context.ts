/** What every transport needs from the server: the core, token checks and the origin policy. */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HeraldError, type DisconnectInfo } from '@herald/protocol';
import type { Logger } from 'pino';
import type { TokenVerifier } from '../auth/tokens.js';
import { isOriginAllowed, type OriginPolicy } from '../auth/origin.js';
import type { Credentials } from '../core/credentials.js';
import type { Hub } from '../core/hub.js';
import type { BackendHooks } from '../hooks/backend-hooks.js';
import { connectsByHook, hookConnect } from '../hooks/decisions.js';
import { refuseUpgrade } from '../http/respond.js';
import type { HookClient } from '../hooks/types.js';

export interface TransportContext {
  readonly hub: Hub;
  readonly tokens: TokenVerifier;
  readonly origins: OriginPolicy;
  readonly logger: Logger;
  /** Cookie that may carry the client token on SSE and poll requests. */
  readonly tokenCookie: string | undefined;
  readonly pingIntervalSeconds: number;
  readonly sseRetryMs: number;
  readonly ssePingSeconds: number;
  readonly connectTimeoutMs: number;
  /** Commands per second a WebSocket connection may send, and the burst above it. */
  readonly commandRate: { readonly perSecond: number; readonly burst: number };
  /** The hooks that decide (connect, subscribe, publish, refresh, rpc), when any is configured. */
  readonly hooks?: BackendHooks;
}

/**
 * The client as the hooks see it, from its handshake or HTTP request; undefined without hooks
 * (then nothing is copied per connection).
 */
export function hookClientOf(ctx: TransportContext, req: IncomingMessage, transport: string): HookClient | undefined {
  return ctx.hooks?.any === true ? ctx.hooks.client(transport, req.socket?.remoteAddress, req.headers) : undefined;
}

export function checkOrigin(ctx: TransportContext, req: IncomingMessage): void {
  if (!isOriginAllowed(ctx.origins, req.headers.origin, req.headers.host)) {
    throw new HeraldError('origin_not_allowed', 'this origin is not allowed');
  }
}

/**
 * The checks every WebSocket endpoint makes before its upgrade: an allowed origin and a hub that
 * accepts connections. False when it refused (and answered) the upgrade.
 */
export function upgradeAllowed(ctx: TransportContext, req: IncomingMessage, socket: Duplex): boolean {
  try {
    checkOrigin(ctx, req);
    if (!ctx.hub.ready) throw new HeraldError('not_ready', 'the hub is not accepting connections');
    return true;
  } catch (error) {
    const e = error instanceof HeraldError ? error : new HeraldError('internal', 'internal error');
    refuseUpgrade(socket, e.code, e.message);
    return false;
  }
}

/**
 * CORS headers for a browser request (none for non-browser requests). With the origin policy
 * given, a disallowed origin gets none, so even an error answer cannot be read by its page; and
 * under `origins: *` the origin is echoed without `Allow-Credentials`, so no site can read a
 * stream opened with another user's cookie. Without the policy the caller must have checked it.
 */
export function corsHeaders(req: IncomingMessage, origins?: OriginPolicy): Record<string, string> {
  const origin = req.headers.origin;
  if (origin === undefined) return {};
  if (origins !== undefined) {
    if (!isOriginAllowed(origins, origin, req.headers.host)) return {};
    if (origins.kind === 'any') return { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
  }
  return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' };
}

/**
 * Verifies a token and counts the failure, so every transport reports auth failures alike.
 * Without a token there is no signature to check: the anonymous answer (or refusal) comes at
 * once, without a promise; connection setup is mostly anonymous on public channels.
 *
 * `client` (from `hookClientOf`) is the request the credentials come with. A token decides by
 * itself (JWT rules); without one, a configured connect hook decides (a session cookie); without
 * either, the anonymous rules apply. With hooks, the credentials keep `client` for later hook calls.
 */
export function authenticate(
  ctx: TransportContext,
  token: string | undefined,
  client?: HookClient,
): Credentials | Promise<Credentials> {
  if (token === undefined) {
    if (connectsByHook(ctx.hooks, client)) {
      return hookConnect(ctx.hooks as BackendHooks, client, ctx.tokens.anonymous().canSubscribe, ctx.hub.now()).catch(
        (error: unknown) => {
          if (!(error instanceof HeraldError) || error.code !== 'hook_unavailable') ctx.hub.countAuthFailure();
          throw error;
        },
      );
    }
    const anonymous = authenticateAnonymous(ctx);
    return client === undefined ? anonymous : { ...anonymous, hookClient: client };
  }
  const verified = ctx.tokens.verify(token).catch((error: unknown) => {
    throw countedAuthFailure(ctx, error);
  });
  return client === undefined ? verified : verified.then((c) => ({ ...c, hookClient: client }));
}

/** `authenticate` for a client without a token. */
export function authenticateAnonymous(ctx: TransportContext): Credentials {
  try {
    return ctx.tokens.verifyAnonymous();
  } catch (error) {
    throw countedAuthFailure(ctx, error);
  }
}

function countedAuthFailure(ctx: TransportContext, error: unknown): unknown {
  ctx.hub.countAuthFailure();
  return error;
}

/** The `{code, reason, reconnect}` of SSE's `herald.disconnect`. */
export function disconnectJson(info: DisconnectInfo): string {
  return JSON.stringify({ code: info.code, reason: info.reason, reconnect: info.reconnect });
}
