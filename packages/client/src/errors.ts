/**
 * The SDK's one error type. `code` is the hub's error code (docs/errors.md) when the hub answered,
 * or one of the client codes below when it never did. Every rejected promise, subscription `error`
 * event and `disconnected` / `closed` state carries one.
 */
import { CloseCode, closeCodeInfo, type ErrorCode } from '@herald/protocol';

/** Failures the hub did not report itself. */
export type ClientErrorCode =
  /** The connection or request failed before the hub answered (offline, refused, cut, proxy error). */
  | 'network'
  /** The hub ended the connection (close code in `closeCode`), for example 1001 on a restart. */
  | 'disconnected'
  /** No answer within the configured time. */
  | 'timeout'
  /** `close()` was called. */
  | 'closed'
  /** The `token` function threw or returned something other than a non-empty string. */
  | 'token_failed'
  /** The hub closed with 4002: the client broke the protocol, which is a bug, so it does not reconnect. */
  | 'protocol_violation';

export type HeraldErrorCode = ErrorCode | ClientErrorCode;

export interface HeraldErrorDetails {
  /** HTTP status of the hub's answer, when the error came over HTTP. */
  readonly status?: number;
  /** WebSocket close code (or its SSE / HTTP equivalent) when the error ended a connection. */
  readonly closeCode?: number;
  readonly cause?: unknown;
}

export class HeraldClientError extends Error {
  readonly code: HeraldErrorCode;
  readonly status: number | undefined;
  readonly closeCode: number | undefined;

  constructor(code: HeraldErrorCode, message: string, details: HeraldErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HeraldClientError';
    this.code = code;
    this.status = details.status;
    this.closeCode = details.closeCode;
  }
}

/** The error describing a connection that ended with `closeCode` (the registry's error for it, if any). */
export function closeError(closeCode: number, reason: string): HeraldClientError {
  const code: HeraldErrorCode =
    closeCode === CloseCode.ProtocolViolation
      ? 'protocol_violation'
      : (closeCodeInfo(closeCode)?.error ?? (closeCode === 1006 ? 'network' : 'disconnected'));
  return new HeraldClientError(code, reason || `connection closed (${closeCode})`, { closeCode });
}
