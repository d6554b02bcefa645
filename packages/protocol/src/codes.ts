import type { DisconnectInfo } from './types.js';

/**
 * Every close code and error code of the wire protocol, in one registry.
 * docs/errors.md lists exactly these; a test keeps the two in step.
 */

/** WebSocket close codes (PROTOCOL.md section 5). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  MessageTooBig: 1009,
  /** Extension: the hub cannot check the token right now (its JWKS is unreachable); reconnect with backoff. */
  TryAgainLater: 1013,
  Unauthorized: 4001,
  ProtocolViolation: 4002,
  TokenExpired: 4003,
  SlowConsumer: 4004,
  RateLimited: 4005,
  ConnectTimeout: 4006,
  /** Extension: an SSE stream lost a channel's position (broker gap); reconnect, expect recovered: false. */
  InsufficientState: 4007,
  /** Extension: the backend ended the connection (`POST /api/disconnect`, its default code); `reconnect: false` in the push stops clients. */
  Disconnected: 4008,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * How a client should come back after a close: not at all (`stop`), at once after a short random
 * delay (`prompt`; for 4003 after fetching a fresh token), or after an exponential backoff
 * (`backoff`), which `throttled` starts as if several attempts had failed already.
 */
export type RetryPolicy = 'stop' | 'prompt' | 'backoff' | 'throttled';

export interface CloseCodeInfo {
  readonly reason: string;
  /** Whether a client should connect again: the `reconnect` of every disconnect push and event. */
  readonly reconnect: boolean;
  readonly retry: RetryPolicy;
  /** The error code a client reports for this close, when it is a refusal rather than an event. */
  readonly error?: ErrorCode;
  /** Other refusals that end a connection with this code (the client reports their own code). */
  readonly alsoFor?: readonly ErrorCode[];
}

export const CLOSE_CODES: Readonly<Record<CloseCode, CloseCodeInfo>> = {
  1000: { reason: 'normal closure', reconnect: false, retry: 'stop' },
  1001: {
    reason: 'hub going away',
    reconnect: true,
    retry: 'prompt',
  },
  1009: {
    reason: 'message too big',
    reconnect: false,
    retry: 'stop',
    error: 'too_large',
  },
  1013: {
    reason: 'try again later',
    reconnect: true,
    retry: 'backoff',
    error: 'keys_unavailable',
    alsoFor: ['hook_unavailable'],
  },
  4001: {
    reason: 'unauthorized',
    reconnect: false,
    retry: 'stop',
    error: 'unauthorized',
  },
  4002: { reason: 'protocol violation', reconnect: false, retry: 'stop' },
  4003: {
    reason: 'token expired',
    reconnect: true,
    retry: 'prompt',
  },
  4004: {
    reason: 'slow consumer',
    reconnect: true,
    retry: 'prompt',
  },
  4005: {
    reason: 'rate limited',
    reconnect: true,
    retry: 'throttled',
    error: 'rate_limited',
  },
  4006: {
    reason: 'no connect command in time',
    reconnect: true,
    retry: 'backoff',
  },
  4007: {
    reason: 'insufficient state',
    reconnect: true,
    retry: 'prompt',
  },
  4008: {
    reason: 'disconnected by the server',
    reconnect: true,
    retry: 'backoff',
  },
};

/** The registry's entry for `code`, or undefined for a code the hub never sends (1006, a proxy's). */
export function closeCodeInfo(code: number): CloseCodeInfo | undefined {
  return Object.hasOwn(CLOSE_CODES, code) ? CLOSE_CODES[code as CloseCode] : undefined;
}

/** The close code that ends a connection refused with `error`, if the registry names one. */
export function closeCodeForError(error: ErrorCode): CloseCode | undefined {
  for (const [code, info] of Object.entries(CLOSE_CODES)) {
    if (info.error === error || info.alsoFor?.includes(error) === true) return Number(code) as CloseCode;
  }
  return undefined;
}

/**
 * What the hub says when it ends a connection with `code`: the reason (the registry's unless
 * given) and the reconnect advice, which always comes from the registry. Every disconnect the hub
 * starts is built here, so a code cannot mean "reconnect" in one place and "stop" in another.
 */
export function closeInfo(code: CloseCode, reason?: string): DisconnectInfo {
  const info = CLOSE_CODES[code];
  return { code, reason: reason ?? info.reason, reconnect: info.reconnect };
}

/** Codes of the WebSocket `unsub` push: the hub ended one subscription, not the connection. */
export const UnsubscribeCode = {
  /** The hub lost the channel's stream position (broker gap or reset): subscribe again with `since`. */
  InsufficientState: 2500,
  /** The subscriber is no longer permitted (token refreshed without the channel). */
  Forbidden: 2403,
  /** The backend took the connection out of the channel (`POST /api/unsubscribe`). */
  Server: 2000,
} as const;
export type UnsubscribeCode = (typeof UnsubscribeCode)[keyof typeof UnsubscribeCode];

export interface UnsubscribeCodeInfo {
  readonly reason: string;
  /** Whether subscribing again can work (with `since`, expecting `recovered: false` for 2500). */
  readonly resubscribe: boolean;
}

export const UNSUBSCRIBE_CODES: Readonly<Record<UnsubscribeCode, UnsubscribeCodeInfo>> = {
  2500: { reason: 'insufficient state', resubscribe: true },
  2403: { reason: 'no longer permitted', resubscribe: false },
  2000: { reason: 'unsubscribed by the server', resubscribe: false },
};

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
  conflict: 409,
  gone: 410,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  not_ready: 503,
  broker_unavailable: 503,
  keys_unavailable: 503,
  hook_unavailable: 503,
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
  /** When set, trying again sooner is pointless: HTTP answers carry it as `Retry-After`. */
  readonly retryAfterSeconds?: number;
  constructor(code: ErrorCode, message: string, options: { readonly retryAfterSeconds?: number } = {}) {
    super(message);
    this.name = 'HeraldError';
    this.code = code;
    this.status = ERROR_CODES[code];
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}
