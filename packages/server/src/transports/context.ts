/** What every transport needs from the server: the core, token checks and the origin policy. */
import type { IncomingMessage } from 'node:http';
import { HeraldError, type DisconnectInfo } from '@herald/protocol';
import type { Logger } from 'pino';
import type { TokenVerifier } from '../auth/tokens.js';
import { isOriginAllowed, type OriginPolicy } from '../auth/origin.js';
import type { Credentials } from '../core/credentials.js';
import type { Hub } from '../core/hub.js';

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
}

export function checkOrigin(ctx: TransportContext, req: IncomingMessage): void {
  if (!isOriginAllowed(ctx.origins, req.headers.origin, req.headers.host)) {
    throw new HeraldError('origin_not_allowed', 'this origin is not allowed');
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

/** Verifies a token and counts the failure, so every transport reports auth failures alike. */
export async function authenticate(ctx: TransportContext, token: string | undefined): Promise<Credentials> {
  if (token === undefined) return authenticateAnonymous(ctx);
  try {
    return await ctx.tokens.verify(token);
  } catch (error) {
    throw countedAuthFailure(ctx, error);
  }
}

/**
 * `authenticate` for a client without a token, without a promise: there is no signature to check.
 * Connection setup is mostly anonymous on public channels; this keeps it synchronous.
 */
export function authenticateAnonymous(ctx: TransportContext): Credentials {
  try {
    return ctx.tokens.verifyAnonymous();
  } catch (error) {
    throw countedAuthFailure(ctx, error);
  }
}

function countedAuthFailure(ctx: TransportContext, error: unknown): unknown {
  ctx.hub.stats.authFailures++;
  return error;
}

export function disconnectJson(info: DisconnectInfo): string {
  return JSON.stringify({ code: info.code, reason: info.reason, reconnect: info.reconnect });
}
