/**
 * When to try a call again, as a pure decision. Only calls that do the same thing when sent twice
 * are retried (reads, publishes with their idempotency key, revocations with an explicit time),
 * and only after failures that a later attempt can get past: no answer (network, timeout), 429,
 * and 502/503/504 (a broker or a proxy that is briefly away). Everything else (400, 401, 403, 404,
 * 413, 500) would fail the same way again.
 */
import type { HeraldApiError } from './errors.js';

export interface RetryOptions {
  /** Attempts in all, the first included; 1 = never retry. Default 4. `Infinity` with `totalMs`. */
  readonly attempts?: number;
  /** Upper bound of the first backoff; each retry doubles it. Default 100 ms. */
  readonly minDelayMs?: number;
  /** Largest backoff (and largest `Retry-After` obeyed). Default 2000 ms. */
  readonly maxDelayMs?: number;
  /** No retry starts later than this after the first attempt. Default: no limit. */
  readonly totalMs?: number;
}

export const RETRY_DEFAULTS = { attempts: 4, minDelayMs: 100, maxDelayMs: 2000 } as const;

const RETRIED_STATUSES = new Set([429, 502, 503, 504]);

/** Whether a later attempt could get past this failure. */
export function isTransient(error: HeraldApiError): boolean {
  if (error.code === 'network' || error.code === 'timeout') return true;
  return error.status !== undefined && RETRIED_STATUSES.has(error.status);
}

/**
 * Milliseconds to wait before attempt number `attempt + 1` (`attempt` failed, counting from 1), or
 * undefined to give up. Backoff with full jitter; a `Retry-After` is obeyed up to `maxDelayMs`.
 */
export function retryDelay(
  error: HeraldApiError,
  attempt: number,
  elapsedMs: number,
  options: RetryOptions = {},
  random: () => number = Math.random,
): number | undefined {
  const attempts = options.attempts ?? RETRY_DEFAULTS.attempts;
  const min = options.minDelayMs ?? RETRY_DEFAULTS.minDelayMs;
  const max = options.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs;
  if (attempt >= attempts || !isTransient(error)) return undefined;
  const backoff = Math.floor(random() * Math.min(max, min * 2 ** (attempt - 1)));
  const delay =
    error.retryAfterSeconds === undefined ? backoff : Math.min(max, Math.max(backoff, error.retryAfterSeconds * 1000));
  if (options.totalMs !== undefined && elapsedMs + delay > options.totalMs) return undefined;
  return delay;
}
