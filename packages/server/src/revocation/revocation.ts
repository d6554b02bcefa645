/**
 * Token revocation as values and pure decisions (`POST /api/revoke`, docs/protocol-extensions.md):
 * what an entry refuses, how two entries for the same user or token combine, and how long an
 * entry must live. The store that shares entries between nodes is `RevocationStore`; the shell
 * that applies them to tokens and live connections is `Revocations`.
 *
 * Times are JWT NumericDates: seconds since the epoch, possibly fractional.
 */
import { HeraldError } from '@herald/protocol';
import type { Credentials } from '../core/credentials.js';

/**
 * Refuses a user's tokens issued before `before` (by `iat`; a token without `iat` counts as issued
 * before it), or the one token with this `jti`. `expiresAt` is when the entry can no longer match
 * any token the hub would accept (absent: never, when no maximum token lifetime is configured).
 */
export type Revocation =
  | { readonly kind: 'user'; readonly userId: string; readonly before: number; readonly expiresAt?: number }
  | { readonly kind: 'token'; readonly jti: string; readonly expiresAt?: number };

/** How the hub's token rules bound an entry's life (tokens.ts enforces the same numbers). */
export interface RevocationPolicy {
  /** Seconds a token may be used after its `iat`; 0 = no limit (entries may then live forever). */
  readonly maxLifetimeSeconds: number;
  readonly leewaySeconds: number;
}

/** A `before` may be this far past the hub's clock: the backend's clock may run ahead. */
export const MAX_BEFORE_SKEW_SECONDS = 60;
/** Longest `jti` a revocation names; tokens.ts keeps no longer one, so it could never match. */
export const MAX_JTI_LENGTH = 256;
const MAX_ID_LENGTH = MAX_JTI_LENGTH;

/**
 * Shares revocations between the nodes of one deployment and keeps them across restarts. The core
 * owns this interface; the embedded store, Redis and NATS implement it.
 */
export interface RevocationStore {
  /**
   * Starts following: resolves once `listener` has had every stored entry that has not expired.
   * From then on every entry added on any node reaches `listener`, and after a lost connection
   * the store delivers every entry again (so nothing added meanwhile is missed). Entries may
   * arrive more than once and in any order: `combine` makes that harmless.
   */
  start(listener: (revocation: Revocation) => void): Promise<void>;
  /** Stores the entry (combined with one for the same key) durably, then tells every node. */
  add(revocation: Revocation): Promise<void>;
  close(): Promise<void>;
}

/** One entry per user and per token id; a second entry for the same key combines with the first. */
export function revocationKey(r: Revocation): string {
  return r.kind === 'user' ? `u:${r.userId}` : `t:${r.jti}`;
}

/** The entry that refuses everything either refuses, for as long as either would. Commutative. */
export function combine(a: Revocation, b: Revocation): Revocation {
  const expiresAt =
    a.expiresAt === undefined || b.expiresAt === undefined ? undefined : Math.max(a.expiresAt, b.expiresAt);
  const life = expiresAt === undefined ? {} : { expiresAt };
  if (a.kind === 'user' && b.kind === 'user')
    return { kind: 'user', userId: a.userId, before: Math.max(a.before, b.before), ...life };
  if (a.kind === 'token') return { kind: 'token', jti: a.jti, ...life };
  throw new Error('combine: entries of different kinds never share a key');
}

/** Whether the entry refuses a token with these credentials. */
export function refuses(r: Revocation, credentials: Credentials): boolean {
  if (r.kind === 'token') return credentials.jti === r.jti;
  return credentials.userId === r.userId && (credentials.issuedAt === undefined || credentials.issuedAt < r.before);
}

export function isExpired(r: Revocation, nowSeconds: number): boolean {
  return r.expiresAt !== undefined && r.expiresAt <= nowSeconds;
}

/** The body of `POST /api/revoke`: `{user, before?}` or `{jti, exp?}`. */
export interface RevokeInput {
  readonly user?: unknown;
  readonly before?: unknown;
  readonly jti?: unknown;
  readonly exp?: unknown;
}

/**
 * The entry a revoke request asks for, with the life the policy gives it:
 * - `{user, before}`: a token issued before `before` is used at most until `before` plus the
 *   maximum lifetime (plus leeway), so the entry lives that long.
 * - `{jti, exp}`: until `exp` plus leeway, and never longer than any token accepted now can live
 *   (now plus the maximum lifetime, plus leeway for an `iat` slightly ahead and for the age check).
 */
export function revocationFor(input: RevokeInput, policy: RevocationPolicy, nowSeconds: number): Revocation {
  const { user, before, jti, exp } = input;
  if ((user === undefined) === (jti === undefined)) {
    throw new HeraldError(
      'bad_request',
      'give either "user" (with an optional "before") or "jti" (with an optional "exp")',
    );
  }
  const max = policy.maxLifetimeSeconds;
  const leeway = policy.leewaySeconds;
  if (user !== undefined) {
    if (exp !== undefined)
      throw new HeraldError('bad_request', '"exp" goes with "jti"; a user revocation takes "before"');
    if (!isId(user, 200))
      throw new HeraldError('bad_request', '"user" must be a user id (the tokens\' "sub"), 1 to 200 characters');
    const at = before ?? nowSeconds;
    if (!isTime(at) || at > nowSeconds + MAX_BEFORE_SKEW_SECONDS) {
      throw new HeraldError('bad_request', '"before" must be a time in seconds since the epoch, not in the future');
    }
    return max > 0
      ? { kind: 'user', userId: user, before: at, expiresAt: at + max + leeway }
      : { kind: 'user', userId: user, before: at };
  }
  if (before !== undefined)
    throw new HeraldError('bad_request', '"before" goes with "user"; a token revocation takes "exp"');
  if (!isId(jti, MAX_ID_LENGTH)) {
    throw new HeraldError('bad_request', `"jti" must be a token id of 1 to ${MAX_ID_LENGTH} characters`);
  }
  if (exp !== undefined && !isTime(exp))
    throw new HeraldError('bad_request', '"exp" must be the token\'s expiry in seconds since the epoch');
  const bounds: number[] = [];
  if (typeof exp === 'number') bounds.push(exp + leeway);
  if (max > 0) bounds.push(nowSeconds + max + 2 * leeway);
  return bounds.length === 0 ? { kind: 'token', jti } : { kind: 'token', jti, expiresAt: Math.min(...bounds) };
}

/** The entry as the API answers it. */
export function revocationJson(r: Revocation): Record<string, unknown> {
  const life = r.expiresAt === undefined ? {} : { expiresAt: r.expiresAt };
  return r.kind === 'user' ? { user: r.userId, before: r.before, ...life } : { jti: r.jti, ...life };
}

/** Checks an entry read from a store (another node, an older version): undefined when unusable. */
export function parseRevocation(value: unknown): Revocation | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const expiresAt = v.expiresAt;
  if (expiresAt !== undefined && !isTime(expiresAt)) return undefined;
  const life = expiresAt === undefined ? {} : { expiresAt };
  if (v.kind === 'user' && isId(v.userId, 200) && isTime(v.before))
    return { kind: 'user', userId: v.userId, before: v.before, ...life };
  if (v.kind === 'token' && isId(v.jti, MAX_ID_LENGTH)) return { kind: 'token', jti: v.jti, ...life };
  return undefined;
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Any text a token's `sub` or `jti` may hold (tokens.ts takes a `sub` of 1 to 200 characters). */
function isId(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max;
}
