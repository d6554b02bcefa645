/**
 * When to reconnect, as pure decisions (PROTOCOL.md section 5): exponential backoff with full
 * jitter, and what each close code asks of a client, read from the protocol's code registry (the
 * hub's own), so the SDK and the hub cannot disagree about a code.
 */
import { closeCodeInfo } from '@herald/protocol';

/**
 * Rate limited (`throttled`): the backoff starts as if this were the fourth failure in a row and
 * grows from there (the fifth, the sixth...), so a client the hub keeps refusing waits longer each
 * time.
 */
const THROTTLED_HEAD_START = 3;

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
 * `herald.disconnect`): `false` always stops; otherwise it decides for codes this table does not know.
 */
export function reconnectDelay(
  code: number,
  reconnect: boolean | undefined,
  attempt: number,
  s: BackoffSettings,
  random: () => number = Math.random,
): number | undefined {
  // The hub said not to come back (a backend's `POST /api/disconnect`, reconnect false).
  if (reconnect === false) return undefined;
  switch (closeCodeInfo(code)?.retry) {
    case 'stop':
      return undefined;
    // Prompt still means a random delay below the minimum, so that a restarting hub is not hit by
    // every client in the same millisecond.
    case 'prompt':
      return Math.floor(random() * s.minReconnectDelayMs);
    case 'throttled':
      return backoffDelay(attempt + THROTTLED_HEAD_START, s, random);
    case 'backoff':
      return backoffDelay(attempt, s, random);
    case undefined:
      // A code the hub never sends (1006, a proxy's), or one a backend chose: back off and retry.
      return backoffDelay(attempt, s, random);
  }
}
