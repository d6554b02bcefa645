/**
 * The hooks that decide (docs/protocol-extensions.md, "Hooks that decide"): what the hub asks the
 * application's backend, and what it may answer. The same shapes serve both forms: an HTTP POST
 * to a URL (signed, bounded, with a circuit breaker) and an async function in the process.
 */
import type { ErrorCode } from '@herald/protocol';

export type HookName = 'connect' | 'subscribe' | 'publish' | 'refresh' | 'rpc';
export const HOOK_NAMES: readonly HookName[] = ['connect', 'subscribe', 'publish', 'refresh', 'rpc'];

/** What the hub knows of the client at its handshake (or HTTP request), for every hook. */
export interface HookClient {
  /** `websocket`, `sse`, `poll`, `socketio`, or `http` (an HTTP API request). */
  readonly transport: string;
  readonly remoteAddress: string;
  /** The forwarded request headers (`hooks.forwardHeaders`), by lower-case name. */
  readonly headers: Readonly<Record<string, string>>;
}

/** The request body: `{hook, transport, remoteAddress, headers, clientId?, user?, channel?, data?, method?}`. */
export interface HookRequest extends HookClient {
  readonly hook: HookName;
  /** The connection's id, once it has one (not for connect, nor for HTTP requests). */
  readonly clientId?: string;
  /** The connection's user, once authenticated ('' for an anonymous client). */
  readonly user?: string;
  readonly channel?: string;
  readonly data?: unknown;
  /** The RPC method. */
  readonly method?: string;
}

/** A refusal: any hook may answer it instead of its result. */
export interface HookRefusal {
  readonly error: { readonly code: ErrorCode | string; readonly message: string };
}

export interface ConnectHookAnswer {
  readonly user: string;
  readonly info?: unknown;
  /** Channel patterns the client may subscribe to (the token claim `channels`). */
  readonly channels?: readonly string[];
  /** Channel patterns the client may publish to (the token claim `publish`). */
  readonly publish?: readonly string[];
  /** When the connection must be extended (refresh hook) or end: unix seconds, like a JWT `exp`. */
  readonly expiresAt?: number;
}
export interface SubscribeHookAnswer {
  /** Per-subscription info: how the client appears in this channel's presence. */
  readonly info?: unknown;
}
export interface PublishHookAnswer {
  /** Replaces the publication's data before it is stored. */
  readonly data?: unknown;
}
export interface RefreshHookAnswer {
  /** unix seconds */
  readonly expiresAt: number;
}
export interface RpcHookAnswer {
  readonly data?: unknown;
}

export interface HookAnswers {
  connect: ConnectHookAnswer;
  subscribe: SubscribeHookAnswer;
  publish: PublishHookAnswer;
  refresh: RefreshHookAnswer;
  rpc: RpcHookAnswer;
}

/**
 * A hook in the process: called with the request body an HTTP hook would get. Refuse by throwing a
 * HeraldError or by returning `{error: {code, message}}`; anything else thrown is
 * `hook_unavailable` (and logged).
 */
export type HookFunction<N extends HookName> = (
  request: HookRequest & { readonly hook: N },
) => HookAnswers[N] | HookRefusal | Promise<HookAnswers[N] | HookRefusal>;

/** A hook on the application's backend. */
export interface HookEndpoint {
  readonly url: string;
  /** Milliseconds before the call counts as failed (`hook_unavailable`). Default `hooks.timeoutMs`. */
  readonly timeoutMs?: number;
}

export interface HooksOptions {
  readonly connect?: HookEndpoint | HookFunction<'connect'>;
  readonly subscribe?: HookEndpoint | HookFunction<'subscribe'>;
  readonly publish?: HookEndpoint | HookFunction<'publish'>;
  readonly refresh?: HookEndpoint | HookFunction<'refresh'>;
  readonly rpc?: HookEndpoint | HookFunction<'rpc'>;
  /** Signs HTTP hook requests (`Herald-Signature`); required when any hook is a URL. */
  readonly secret?: string;
  /** Request headers forwarded to the hooks. Default cookie, authorization, x-forwarded-for. */
  readonly forwardHeaders?: readonly string[];
  /** Default timeout of HTTP hooks, ms. Default 5000. */
  readonly timeoutMs?: number;
  /** Calls in flight per hook; past it a call is refused at once with `hook_unavailable`. Default 256. */
  readonly concurrency?: number;
  /** Failures in a row that open a hook's circuit (default 5), and ms it stays open (default 5000). */
  readonly circuitBreaker?: { readonly failures: number; readonly cooldownMs: number };
}

export const HOOK_DEFAULTS = {
  forwardHeaders: ['cookie', 'authorization', 'x-forwarded-for'] as readonly string[],
  timeoutMs: 5000,
  concurrency: 256,
  /** Consecutive failures that open a hook's circuit, and how long it stays open. */
  breakerFailures: 5,
  breakerCooldownMs: 5000,
} as const;
