/** The client's options: one typed object, documented defaults, checked once (the error names the key). */
import { HeraldClientError } from './errors.js';
import type { TokenSource } from './token.js';
import type { TransportName, WebSocketConstructor } from './transports/transport.js';

export interface HeraldOptions {
  /** A client JWT, or a function returning one (sync or async). Absent: anonymous. */
  readonly token?: TokenSource;
  /**
   * Transports in order of preference. Default `['websocket', 'sse', 'poll']`; one entry forces
   * that transport. `websocket` is left out when there is no WebSocket implementation.
   */
  readonly transports?: readonly TransportName[];
  /** WebSocket implementation. Default `globalThis.WebSocket` (Node.js 20: pass `WebSocket` from `ws`). */
  readonly WebSocket?: WebSocketConstructor;
  /** fetch implementation. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
  /** Backoff before reconnecting: full jitter between 0 and min * 2^attempt, capped. Defaults 500 / 20 000. */
  readonly minReconnectDelayMs?: number;
  readonly maxReconnectDelayMs?: number;
  /** How long a transport may take to connect before the next one is tried. Default 5 000. */
  readonly connectTimeoutMs?: number;
  /** Default deadline of `publish`, `presence` and `history`, retries included. Default 10 000. */
  readonly requestTimeoutMs?: number;
  /** While on a fallback transport, try WebSocket again this often (0: never). Default 60 000. */
  readonly upgradeProbeMs?: number;
  /** Seconds one long-poll may wait on the hub (at most 55). Default 25. */
  readonly pollTimeoutSeconds?: number;
}

export interface ResolvedOptions extends Required<Omit<HeraldOptions, 'token' | 'WebSocket'>> {
  readonly token: TokenSource | undefined;
  readonly WebSocket: WebSocketConstructor | undefined;
}

const TRANSPORTS: readonly TransportName[] = ['websocket', 'sse', 'poll'];
const NUMBERS = {
  minReconnectDelayMs: 500,
  maxReconnectDelayMs: 20_000,
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  upgradeProbeMs: 60_000,
  pollTimeoutSeconds: 25,
} as const;

function invalid(key: string, problem: string): HeraldClientError {
  return new HeraldClientError('bad_request', `Invalid option "${key}": ${problem}`);
}

export function resolveOptions(options: HeraldOptions): Readonly<ResolvedOptions> {
  const g = globalThis as { WebSocket?: WebSocketConstructor };
  const WebSocket = options.WebSocket ?? g.WebSocket;
  const token = options.token;
  if (token === '')
    throw invalid('token', 'is an empty string (was the variable it came from set?); leave it out for no token');
  if (token !== undefined && typeof token !== 'function' && typeof token !== 'string') {
    throw invalid('token', 'must be a non-empty string or a function');
  }
  const wanted = options.transports ?? TRANSPORTS;
  if (wanted.length === 0 || wanted.some((t) => !TRANSPORTS.includes(t))) {
    throw invalid('transports', `must list some of ${TRANSPORTS.join(', ')}`);
  }
  const transports = wanted.filter((t) => t !== 'websocket' || WebSocket !== undefined);
  if (transports.length === 0) throw invalid('transports', 'websocket needs a WebSocket implementation');
  const numbers: Record<string, number> = { ...NUMBERS };
  for (const key of Object.keys(NUMBERS)) {
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value >= 0) || value === Infinity) throw invalid(key, 'must be a number >= 0');
    numbers[key] = value;
  }
  if (numbers.pollTimeoutSeconds! > 55) throw invalid('pollTimeoutSeconds', 'must be at most 55');
  return Object.freeze({
    ...(numbers as typeof NUMBERS),
    token,
    transports,
    WebSocket,
    // Bound late: browsers refuse `fetch` called with another `this`.
    fetch: options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init)),
  });
}
