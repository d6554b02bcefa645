/**
 * Every close code and error code of the wire protocol, in one registry.
 * docs/errors.md lists exactly these; a test keeps the two in step.
 */

/** WebSocket close codes (PROTOCOL.md section 5). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  MessageTooBig: 1009,
  Unauthorized: 4001,
  ProtocolViolation: 4002,
  TokenExpired: 4003,
  SlowConsumer: 4004,
  RateLimited: 4005,
  ConnectTimeout: 4006,
  /** Extension: an SSE stream lost a channel's position (broker gap); reconnect, expect recovered: false. */
  InsufficientState: 4007,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export interface CloseCodeInfo {
  readonly reason: string;
  /** Whether a client should connect again, and how. */
  readonly reconnect: boolean;
  readonly advice: string;
}

export const CLOSE_CODES: Readonly<Record<CloseCode, CloseCodeInfo>> = {
  1000: { reason: 'normal closure', reconnect: false, advice: 'do not reconnect' },
  1001: { reason: 'hub going away', reconnect: true, advice: 'reconnect promptly, to any node, and resume' },
  1009: { reason: 'message too big', reconnect: false, advice: 'fix the client; frames are limited' },
  4001: { reason: 'unauthorized', reconnect: false, advice: 'get a valid token before connecting again' },
  4002: { reason: 'protocol violation', reconnect: false, advice: 'fix the client' },
  4003: { reason: 'token expired', reconnect: true, advice: 'refresh the token, then reconnect and resume' },
  4004: { reason: 'slow consumer', reconnect: true, advice: 'reconnect and resume from the last position' },
  4005: { reason: 'rate limited', reconnect: true, advice: 'reconnect with backoff' },
  4006: { reason: 'no connect command in time', reconnect: true, advice: 'send connect first, within 10 s' },
  4007: { reason: 'insufficient state', reconnect: true, advice: 'reconnect and resume; expect recovered: false' },
};

/** Codes of the WebSocket `unsub` push: the hub ended one subscription, not the connection. */
export const UnsubscribeCode = {
  /** The hub lost the channel's stream position (broker gap or reset): subscribe again with `since`. */
  InsufficientState: 2500,
  /** The subscriber is no longer permitted (token refreshed without the channel). */
  Forbidden: 2403,
} as const;
export type UnsubscribeCode = (typeof UnsubscribeCode)[keyof typeof UnsubscribeCode];

/** Error codes carried in `{"error": {"code", "message"}}`, with the HTTP status each answers. */
export const ERROR_CODES = {
  bad_request: 400,
  bad_channel: 400,
  bad_cursor: 400,
  reserved_event: 400,
  already_subscribed: 400,
  not_subscribed: 400,
  unauthorized: 401,
  forbidden: 403,
  origin_not_allowed: 403,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  not_ready: 503,
  broker_unavailable: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
}

/** A protocol error raised inside the hub or the SDK: stable `code`, human `message`. */
export class HeraldError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'HeraldError';
    this.code = code;
    this.status = ERROR_CODES[code];
  }
  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}
