/**
 * The hub library's options: one typed object with documented defaults, checked once at start
 * (an error names the bad key), then frozen. The CLI maps environment and config files onto it.
 */
import type { Logger } from 'pino';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker, PresenceStore } from './broker/broker.js';
import type { AdmissionControl } from './http/admission.js';
import { HOOK_NAMES, type HooksOptions } from './hooks/types.js';
import type { RevocationStore } from './revocation/revocation.js';

export interface HeraldOptions {
  /** Secret for the server API (`Authorization: Bearer <apiKey>`). */
  readonly apiKey: string;
  /**
   * HS256 secret for client tokens. Without it HS256 tokens are refused; then `jwtPublicKey` or
   * `jwksUrl` must be set.
   */
  readonly jwtSecret?: string;
  /**
   * Public key(s) for RS256, ES256 and EdDSA client tokens: PEM (SPKI), a JWK, or a JWK set
   * `{"keys": [...]}`, as text. The key type decides the algorithm. Default none.
   */
  readonly jwtPublicKey?: string;
  /** URL of a JWK set (an identity provider's `jwks_uri`) for RS256, ES256 and EdDSA tokens. Default none. */
  readonly jwksUrl?: string;
  /** Seconds a fetched JWK set is used before it is fetched again. Default 600. */
  readonly jwksCacheSeconds?: number;
  /**
   * Seconds after a JWKS fetch during which a token with an unknown `kid` does not cause another
   * (it gets `keys_unavailable`, retry later). Default 30; at most `jwksCacheSeconds`.
   */
  readonly jwksCooldownSeconds?: number;
  /** Seconds of grace after a token's `exp` (0 to 60). Default 0. */
  readonly jwtLeewaySeconds?: number;
  /**
   * Seconds a token may be used after its `iat`; 0 = no limit (the default). When set, tokens must
   * carry `iat`, and revocations expire once no token they match can be used any more; without it,
   * revocations by user (and by `jti` without `exp`) are kept for good.
   */
  readonly jwtMaxLifetimeSeconds?: number;
  /** Where revocations are shared and kept (Redis, NATS). Defaults to this process's memory. */
  readonly revocations?: RevocationStore;
  /** When set, tokens must carry this `aud`. */
  readonly jwtAudience?: string;
  /** When set, tokens must carry this `iss`. */
  readonly jwtIssuer?: string;
  /** Channel patterns clients without a token may subscribe to. Default none. */
  readonly anonymousChannels?: readonly string[];
  /** Allowed browser origins; `*` = any; empty = same host only (default). */
  readonly origins?: readonly string[];
  /** Defaults to the in-memory broker. */
  readonly broker?: Broker;
  /** Defaults to in-memory presence. */
  readonly presence?: PresenceStore;
  /** Publications kept per channel. Default 1000. */
  readonly historySize?: number;
  /** Seconds a publication is kept. Default 600. */
  readonly historyTtlSeconds?: number;
  /** Largest publication `data` as JSON text. Default 65536. */
  readonly maxMessageBytes?: number;
  /** Outgoing bytes buffered per client before it is disconnected with 4004. Default 1 MiB. */
  readonly maxQueueBytes?: number;
  /**
   * The roll-up window of text-stream appends, in ms: each subscriber gets a stream's appends
   * merged at most once per window (docs/streams.md). 0 delivers every append at once. Default 40.
   */
  readonly streamWindowMs?: number;
  /** Subscriptions per connection. Default 128. */
  readonly maxSubscriptionsPerConnection?: number;
  /** WebSocket ping interval in seconds. Default 25. */
  readonly pingIntervalSeconds?: number;
  /** SSE `retry:` in ms. Default 2000. */
  readonly sseRetryMs?: number;
  /** Seconds between SSE `: ping` comments (at most 20). Default 15. */
  readonly ssePingSeconds?: number;
  /** Milliseconds a WebSocket may stay open before its `connect` command (else close 4006). Default 10000. */
  readonly connectTimeoutMs?: number;
  /** WebSocket commands per second per connection, and the burst allowed above it. */
  readonly commandRate?: { readonly perSecond: number; readonly burst: number };
  /**
   * Connections (WebSocket, SSE, poll) one client address may hold open; past it, HTTP 429 before
   * any upgrade or stream. 0 = no cap (the default: behind a proxy every client shares its address).
   */
  readonly maxConnectionsPerIp?: number;
  /** New connections per second from one client address, and the burst above it. perSecond 0 = off (default). */
  readonly connectionRatePerIp?: { readonly perSecond: number; readonly burst: number };
  /** New connections per second for the whole hub, and the burst above it (reconnect storms). perSecond 0 = off (default). */
  readonly connectionRate?: { readonly perSecond: number; readonly burst: number };
  /**
   * Where the three limits above are counted, when not in this process: the processes of
   * `herald serve --workers N` share the primary's (`apps/herald/src/shared-admission.ts`), so a
   * client address holds at most `maxConnectionsPerIp` on the machine, not per worker. When set,
   * the three options above are not used by this server.
   */
  readonly admission?: AdmissionControl;
  /**
   * Connections one user (token `sub`) may hold on this node; past it WebSocket `connect` ends
   * with 4005 and SSE/poll answer 429. Anonymous clients are not counted. 0 = no cap (default).
   */
  readonly maxConnectionsPerUser?: number;
  /**
   * Publications one server API request may make: the commands of `POST /api/batch`, the
   * channels of `POST /api/broadcast` (413 `too_large` beyond). Default 1000.
   */
  readonly maxBatchItems?: number;
  /** Largest body of `POST /api/batch` and `POST /api/broadcast`, bytes (413 beyond). Default 4 MiB. */
  readonly maxBatchBodyBytes?: number;
  /** Cookie that may carry the client token on SSE and poll requests. */
  readonly tokenCookie?: string;
  /** This node's name in `GET /api/info` and `GET /api/connections`. Default: host name, pid and a random tag. */
  readonly node?: string;
  readonly logger?: Logger;
  /**
   * PEM certificate and key: the hub then serves HTTPS with HTTP/2 (so one browser holds many SSE
   * streams on one connection) and HTTP/1.1 for older clients and WebSocket upgrades. Default: plain HTTP/1.1.
   */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /**
   * Extra HTTP routes (demo pages, admin): called for requests the hub does not own.
   * Return true when the request was answered.
   */
  readonly routes?: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;
  /**
   * Hooks that decide: the application's backend (an HTTP endpoint, `{url, timeoutMs?}`) or a
   * function in this process answers connect, subscribe, publish, refresh and rpc
   * (docs/protocol-extensions.md, "Hooks that decide"). Default none.
   */
  readonly hooks?: HooksOptions;
  /**
   * What `/metrics` answers (Prometheus text) instead of this process's own registry: a worker of
   * `herald serve --workers N` answers with the sum over every worker. Default: this hub's metrics.
   */
  readonly metricsText?: () => Promise<string>;
}

/** Options without a default: absent stays absent. */
type Unset =
  | 'broker'
  | 'presence'
  | 'revocations'
  | 'logger'
  | 'routes'
  | 'metricsText'
  | 'jwtSecret'
  | 'jwtPublicKey'
  | 'jwksUrl'
  | 'jwtAudience'
  | 'jwtIssuer'
  | 'tokenCookie'
  | 'node'
  | 'tls'
  | 'hooks'
  | 'admission';

export type ResolvedOptions = Required<Omit<HeraldOptions, Unset>> & Pick<HeraldOptions, Unset>;

export const DEFAULTS = {
  jwtLeewaySeconds: 0,
  jwtMaxLifetimeSeconds: 0,
  jwksCacheSeconds: 600,
  jwksCooldownSeconds: 30,
  anonymousChannels: [] as readonly string[],
  origins: [] as readonly string[],
  historySize: 1000,
  historyTtlSeconds: 600,
  maxMessageBytes: 65_536,
  maxQueueBytes: 1_048_576,
  streamWindowMs: 40,
  maxSubscriptionsPerConnection: 128,
  pingIntervalSeconds: 25,
  sseRetryMs: 2000,
  ssePingSeconds: 15,
  connectTimeoutMs: 10_000,
  commandRate: { perSecond: 100, burst: 200 },
  maxConnectionsPerIp: 0,
  connectionRatePerIp: { perSecond: 0, burst: 0 },
  connectionRate: { perSecond: 0, burst: 0 },
  maxConnectionsPerUser: 0,
  maxBatchItems: 1000,
  maxBatchBodyBytes: 4 * 1_048_576,
} as const;

export class OptionsError extends Error {
  constructor(key: string, problem: string) {
    super(`Invalid option "${key}": ${problem}`);
    this.name = 'OptionsError';
  }
}

export function resolveOptions(options: HeraldOptions): Readonly<ResolvedOptions> {
  const resolved = { ...DEFAULTS, ...stripUndefined(options) } as ResolvedOptions;
  nonEmpty(resolved.apiKey, 'apiKey');
  if (resolved.jwtSecret === undefined && resolved.jwtPublicKey === undefined && resolved.jwksUrl === undefined) {
    throw new OptionsError(
      'jwtSecret',
      'set jwtSecret, jwtPublicKey or jwksUrl: clients need some key to sign tokens with',
    );
  }
  if (resolved.jwtSecret !== undefined) nonEmpty(resolved.jwtSecret, 'jwtSecret');
  if (resolved.jwtPublicKey !== undefined) nonEmpty(resolved.jwtPublicKey, 'jwtPublicKey');
  if (resolved.jwksUrl !== undefined) httpUrl(resolved.jwksUrl, 'jwksUrl');
  if (resolved.node !== undefined) nonEmpty(resolved.node, 'node');
  integer(resolved.jwtLeewaySeconds, 'jwtLeewaySeconds', 0, 60);
  integer(resolved.jwtMaxLifetimeSeconds, 'jwtMaxLifetimeSeconds', 0, 366 * 86_400);
  integer(resolved.jwksCacheSeconds, 'jwksCacheSeconds', 1, 86_400);
  integer(resolved.jwksCooldownSeconds, 'jwksCooldownSeconds', 0, resolved.jwksCacheSeconds);
  integer(resolved.historySize, 'historySize', 0, 1_000_000);
  integer(resolved.historyTtlSeconds, 'historyTtlSeconds', 1, 31 * 86_400);
  integer(resolved.maxMessageBytes, 'maxMessageBytes', 1, 64 * 1_048_576);
  integer(resolved.maxQueueBytes, 'maxQueueBytes', 1024, 1_073_741_824);
  integer(resolved.maxSubscriptionsPerConnection, 'maxSubscriptionsPerConnection', 1, 100_000);
  integer(resolved.pingIntervalSeconds, 'pingIntervalSeconds', 1, 3600);
  integer(resolved.sseRetryMs, 'sseRetryMs', 0, 3_600_000);
  integer(resolved.ssePingSeconds, 'ssePingSeconds', 1, 20);
  integer(resolved.streamWindowMs, 'streamWindowMs', 0, 10_000);
  integer(resolved.connectTimeoutMs, 'connectTimeoutMs', 100, 600_000);
  if (resolved.tls !== undefined) {
    if (resolved.tls.cert.length === 0) throw new OptionsError('tls.cert', 'must be a PEM certificate');
    if (resolved.tls.key.length === 0) throw new OptionsError('tls.key', 'must be a PEM private key');
  }
  if (!(resolved.commandRate.perSecond > 0 && resolved.commandRate.burst >= 1)) {
    throw new OptionsError('commandRate', 'perSecond must be > 0 and burst >= 1');
  }
  integer(resolved.maxConnectionsPerIp, 'maxConnectionsPerIp', 0, 10_000_000);
  integer(resolved.maxConnectionsPerUser, 'maxConnectionsPerUser', 0, 10_000_000);
  integer(resolved.maxBatchItems, 'maxBatchItems', 1, 100_000);
  integer(resolved.maxBatchBodyBytes, 'maxBatchBodyBytes', 1024, 1_073_741_824);
  rateLimit(resolved.connectionRatePerIp, 'connectionRatePerIp');
  rateLimit(resolved.connectionRate, 'connectionRate');
  if (resolved.hooks !== undefined) checkHooks(resolved.hooks);
  return Object.freeze(resolved);
}

function checkHooks(hooks: HooksOptions): void {
  let urls = false;
  for (const name of HOOK_NAMES) {
    const hook = hooks[name];
    if (hook === undefined || typeof hook === 'function') continue;
    httpUrl(hook.url, `hooks.${name}.url`);
    if (hook.timeoutMs !== undefined) integer(hook.timeoutMs, `hooks.${name}.timeoutMs`, 1, 600_000);
    urls = true;
  }
  if (urls) nonEmpty(hooks.secret, 'hooks.secret');
  if (hooks.timeoutMs !== undefined) integer(hooks.timeoutMs, 'hooks.timeoutMs', 1, 600_000);
  if (hooks.concurrency !== undefined) integer(hooks.concurrency, 'hooks.concurrency', 1, 1_000_000);
  if (hooks.circuitBreaker !== undefined) {
    integer(hooks.circuitBreaker.failures, 'hooks.circuitBreaker.failures', 1, 1_000_000);
    integer(hooks.circuitBreaker.cooldownMs, 'hooks.circuitBreaker.cooldownMs', 1, 3_600_000);
  }
  const forward = hooks.forwardHeaders;
  if (
    forward !== undefined &&
    (!Array.isArray(forward) || !forward.every((h) => typeof h === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h)))
  ) {
    throw new OptionsError('hooks.forwardHeaders', 'must be a list of header names');
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A token-bucket rate: perSecond 0 turns it off; otherwise the burst must let at least one through. */
function rateLimit(value: { perSecond: number; burst: number } | undefined, key: string): void {
  const ok =
    typeof value === 'object' &&
    value !== null &&
    typeof value.perSecond === 'number' &&
    Number.isFinite(value.perSecond) &&
    value.perSecond >= 0 &&
    Number.isInteger(value.burst) &&
    (value.perSecond === 0 ? value.burst >= 0 : value.burst >= 1);
  if (!ok) throw new OptionsError(key, 'must be {perSecond >= 0, burst >= 1} (perSecond 0 = off)');
}

function nonEmpty(value: unknown, key: string): void {
  if (typeof value !== 'string' || value.length === 0) throw new OptionsError(key, 'must be a non-empty string');
}

function httpUrl(value: unknown, key: string): void {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new OptionsError(key, 'must be an http(s) URL');
  }
}

function integer(value: unknown, key: string, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new OptionsError(key, `must be an integer from ${min} to ${max}`);
  }
}
