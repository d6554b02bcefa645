/**
 * When to reconnect, as pure decisions (PROTOCOL.md section 5): exponential backoff with full
 * jitter, and what each close code asks of a client. The README's close-code table mirrors this.
 */

/** Close codes after which reconnecting would only repeat the failure: a bad token or a client bug. */
const STOP = new Set([1000, 1009, 4001, 4002]);
/**
 * Close codes that ask for a prompt reconnect: the hub is going away (1001), the token expired and
 * a fresh one is fetched for the next connection (4003), the client was too slow (4004), or a
 * stream lost its position (4007). Prompt still means a random delay below the minimum, so that
 * a restarting hub is not hit by every client in the same millisecond.
 */
const PROMPT = new Set([1001, 4003, 4004, 4007]);
/**
 * Rate limited: the backoff starts as if this were the fourth failure in a row and grows from
 * there (the fifth, the sixth...), so a client the hub keeps refusing waits longer each time.
 */
const RATE_LIMITED = 4005;
const RATE_LIMITED_HEAD_START = 3;

export interface BackoffSettings {
  readonly minReconnectDelayMs: number;
  readonly maxReconnectDelayMs: number;
}

/** Full jitter: uniform in [0, min(max, min * 2^attempt)). */
export function backoffDelay(attempt: number, s: BackoffSettings, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(s.maxReconnectDelayMs, s.minReconnectDelayMs * 2 ** attempt));
}

/**
 * Milliseconds to wait before reconnecting after a connection ended with `code`, or `undefined`
 * when the client must not reconnect. `reconnect` is the hub's own advice (disconnect push or SSE
 * `herald.disconnect`), which decides for codes this table does not know.
 */
export function reconnectDelay(
  code: number,
  reconnect: boolean | undefined,
  attempt: number,
  s: BackoffSettings,
  random: () => number = Math.random,
): number | undefined {
  if (STOP.has(code)) return undefined;
  if (PROMPT.has(code)) return Math.floor(random() * s.minReconnectDelayMs);
  if (reconnect === false) return undefined;
  return backoffDelay(code === RATE_LIMITED ? attempt + RATE_LIMITED_HEAD_START : attempt, s, random);
}
