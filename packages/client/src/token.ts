/** Client tokens: where they come from and when to renew them. */

/** A JWT, or a function that fetches a fresh one (called on every new connection and before expiry). */
export type TokenSource = string | (() => string | Promise<string>);

/**
 * The `exp` claim of a JWT in ms, or undefined when it has none or cannot be read. The signature
 * is not checked: the hub does that; this only tells the SDK when to ask for a new token.
 */
export function tokenExpiry(token: string): number | undefined {
  try {
    const payload = token.split('.')[1] as string;
    const exp: unknown = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long to wait before renewing a credential that is valid for `lifetimeMs` more: a third of
 * its lifetime early, at most 30 s early. The hub ends expired connections within 5 s, so this
 * leaves a renewal time to happen (and to be retried) before that.
 */
export function renewDelay(lifetimeMs: number): number {
  return Math.max(0, lifetimeMs - Math.min(30_000, lifetimeMs / 3));
}
