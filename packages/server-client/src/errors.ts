/**
 * The one error type of the server client. `code` is the hub's error code (docs/errors.md) when
 * the hub answered with one, or a client code when it did not; `status` is the HTTP status when
 * any server answered.
 */
import type { ErrorCode } from '@herald/protocol';

/** Failures without an error answer from the hub. */
export type ClientErrorCode =
  /** No answer: refused, reset, DNS, TLS, or the connection dropped mid-answer. */
  | 'network'
  /** An attempt got no answer within `timeoutMs`. */
  | 'timeout'
  /** The caller's `signal` aborted the call. */
  | 'aborted'
  /** An answer that is not the hub's JSON (a proxy's error page, a cut body). */
  | 'bad_answer';

/**
 * Registry codes (`ErrorCode`), client codes, or a code a newer hub added to its registry after
 * this client was built (passed through as the hub sent it).
 */
export type HeraldApiErrorCode = ErrorCode | ClientErrorCode | (string & {});

export interface HeraldApiErrorDetails {
  readonly status?: number;
  /** Attempts made, retries included. */
  readonly attempts?: number;
  /** The hub's `Retry-After`, in seconds, when it sent one. */
  readonly retryAfterSeconds?: number;
  readonly cause?: unknown;
}

export class HeraldApiError extends Error {
  readonly code: HeraldApiErrorCode;
  readonly status: number | undefined;
  readonly attempts: number;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: HeraldApiErrorCode, message: string, details: HeraldApiErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HeraldApiError';
    this.code = code;
    this.status = details.status;
    this.attempts = details.attempts ?? 1;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }

  /** The same error, counting `attempts` (set once the retries are over). */
  withAttempts(attempts: number): HeraldApiError {
    return new HeraldApiError(this.code, this.message, {
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: this.retryAfterSeconds }),
      ...(this.cause === undefined ? {} : { cause: this.cause }),
      attempts,
    });
  }
}
