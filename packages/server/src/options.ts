/**
 * The hub library's options: one typed object with documented defaults, checked once at start
 * (an error names the bad key), then frozen. The CLI maps environment and config files onto it.
 */
import type { Logger } from 'pino';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker, PresenceStore } from './broker/broker.js';

export interface HeraldOptions {
  /** Secret for the server API (`Authorization: Bearer <apiKey>`). */
  readonly apiKey: string;
  /** HS256 secret for client tokens. */
  readonly jwtSecret: string;
  /** Seconds of grace after a token's `exp` (0 to 60). Default 0. */
  readonly jwtLeewaySeconds?: number;
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
   * Connections one user (token `sub`) may hold on this node; past it WebSocket `connect` ends
   * with 4005 and SSE/poll answer 429. Anonymous clients are not counted. 0 = no cap (default).
   */
  readonly maxConnectionsPerUser?: number;
  /** Cookie that may carry the client token on SSE and poll requests. */
  readonly tokenCookie?: string;
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
}

export type ResolvedOptions = Required<
  Omit<HeraldOptions, 'broker' | 'presence' | 'logger' | 'routes' | 'jwtAudience' | 'jwtIssuer' | 'tokenCookie' | 'tls'>
> &
  Pick<
    HeraldOptions,
    'broker' | 'presence' | 'logger' | 'routes' | 'jwtAudience' | 'jwtIssuer' | 'tokenCookie' | 'tls'
  >;

export const DEFAULTS = {
  jwtLeewaySeconds: 0,
  anonymousChannels: [] as readonly string[],
  origins: [] as readonly string[],
  historySize: 1000,
  historyTtlSeconds: 600,
  maxMessageBytes: 65_536,
  maxQueueBytes: 1_048_576,
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
  nonEmpty(resolved.jwtSecret, 'jwtSecret');
  integer(resolved.jwtLeewaySeconds, 'jwtLeewaySeconds', 0, 60);
  integer(resolved.historySize, 'historySize', 0, 1_000_000);
  integer(resolved.historyTtlSeconds, 'historyTtlSeconds', 1, 31 * 86_400);
  integer(resolved.maxMessageBytes, 'maxMessageBytes', 1, 64 * 1_048_576);
  integer(resolved.maxQueueBytes, 'maxQueueBytes', 1024, 1_073_741_824);
  integer(resolved.maxSubscriptionsPerConnection, 'maxSubscriptionsPerConnection', 1, 100_000);
  integer(resolved.pingIntervalSeconds, 'pingIntervalSeconds', 1, 3600);
  integer(resolved.sseRetryMs, 'sseRetryMs', 0, 3_600_000);
  integer(resolved.ssePingSeconds, 'ssePingSeconds', 1, 20);
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
  rateLimit(resolved.connectionRatePerIp, 'connectionRatePerIp');
  rateLimit(resolved.connectionRate, 'connectionRate');
  return Object.freeze(resolved);
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

function integer(value: unknown, key: string, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new OptionsError(key, `must be an integer from ${min} to ${max}`);
  }
}
