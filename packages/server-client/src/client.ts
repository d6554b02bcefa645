/**
 * `HeraldServerClient`: the server API for Node backends (and any runtime with `fetch`), typed.
 *
 * Every endpoint is one method that describes its request as an `Endpoint` value and hands it to
 * `request`; adding one is a few lines here, like `disconnect` below.
 *
 * Retries: calls marked idempotent are retried after failures a later attempt can get past
 * (retry.ts), with backoff. A publish is made idempotent by its idempotency key, generated once
 * per call and sent again on every retry, so a publish whose answer was lost is stored once.
 */
import {
  channelPath,
  request,
  type CallOptions,
  type Endpoint,
  type RequestSettings,
  type RetryEvent,
} from './request.js';
import type { RetryOptions } from './retry.js';
import type {
  ChannelActionInput,
  ConnectionsQuery,
  ConnectionsResult,
  DisconnectInput,
  DisconnectResult,
  InfoResult,
  PresenceStatsResult,
  SubscribeResult,
  UnsubscribeResult,
  ChannelsResult,
  HistoryQuery,
  HistoryResult,
  Position,
  PresenceResult,
  PublishInput,
  PublishResult,
  RevokeInput,
  RevokeResult,
} from './types.js';

export interface HeraldServerClientOptions {
  /** The hub's base URL, for example `http://127.0.0.1:8080` (a path prefix is kept). */
  readonly url: string;
  /** The hub's API key (`HERALD_API_KEY`). */
  readonly apiKey: string;
  /** Milliseconds an attempt may wait for its answer. Default 10000. */
  readonly timeoutMs?: number;
  /** Retries of idempotent calls (retry.ts). Default: 4 attempts, backoff 100 ms doubling to 2 s. */
  readonly retry?: RetryOptions;
  /** Called before each retry (for logs). */
  readonly onRetry?: (event: RetryEvent) => void;
  /** Default: the global `fetch`. */
  readonly fetch?: typeof fetch;
}

export class HeraldServerClient {
  readonly #settings: RequestSettings;

  constructor(options: HeraldServerClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new TypeError(
        `url must be the hub's base URL, like http://127.0.0.1:8080 (got ${JSON.stringify(options.url)})`,
      );
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('url must be http: or https:');
    if (typeof options.apiKey !== 'string' || options.apiKey === '') throw new TypeError('apiKey is required');
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new TypeError('no fetch in this runtime: pass options.fetch');
    this.#settings = {
      baseUrl: `${base.origin}${base.pathname.replace(/\/+$/, '')}`,
      apiKey: options.apiKey,
      fetch: fetchImpl,
      timeoutMs: options.timeoutMs ?? 10_000,
      retry: options.retry ?? {},
      onRetry: options.onRetry,
    };
  }

  /**
   * `POST /api/publish`. Resolves once the hub stored the publication (with its position), or
   * with `{}` for an ephemeral one.
   */
  publish(input: PublishInput & { readonly ephemeral: true }, options?: CallOptions): Promise<Record<string, never>>;
  publish(input: PublishInput & { readonly ephemeral?: false }, options?: CallOptions): Promise<Position>;
  publish(input: PublishInput, options?: CallOptions): Promise<PublishResult>;
  publish(input: PublishInput, options?: CallOptions): Promise<PublishResult> {
    const { extensions, ...fields } = input;
    const body = { ...extensions, ...fields, idempotencyKey: input.idempotencyKey ?? newIdempotencyKey() };
    return this.request({ method: 'POST', path: '/api/publish', body, idempotent: true }, options);
  }

  /** `GET /api/channels/{channel}/history`: oldest first, with the channel's position. */
  history(channel: string, query: HistoryQuery = {}, options?: CallOptions): Promise<HistoryResult> {
    const { limit, since } = query;
    return this.request(
      {
        method: 'GET',
        path: channelPath(channel, 'history'),
        query: { limit, since: since?.offset, epoch: since?.epoch },
        idempotent: true,
      },
      options,
    );
  }

  /** `GET /api/channels/{channel}/presence`: the clients subscribed now, on every node. */
  presence(channel: string, options?: CallOptions): Promise<PresenceResult> {
    return this.request({ method: 'GET', path: channelPath(channel, 'presence'), idempotent: true }, options);
  }

  /** `GET /api/channels`: channels with present subscribers. */
  channels(options?: CallOptions): Promise<ChannelsResult> {
    return this.request({ method: 'GET', path: '/api/channels', idempotent: true }, options);
  }

  /**
   * `POST /api/revoke`: refuses a user's tokens issued before `before` (default: now, on this
   * machine's clock, fixed once so that a retry revokes the same), or one token by its `jti`.
   * Live connections using them end with 4001 on every node.
   */
  revoke(input: RevokeInput, options?: CallOptions): Promise<RevokeResult> {
    const body = 'user' in input ? { ...input, before: input.before ?? Date.now() / 1000 } : input;
    return this.request({ method: 'POST', path: '/api/revoke', body, idempotent: true }, options);
  }

  /**
   * `POST /api/disconnect`: ends every live connection of a user, or one by clientId, on every
   * node and transport. Retried when it may not have arrived: a second disconnect is harmless.
   */
  disconnect(input: DisconnectInput, options?: CallOptions): Promise<DisconnectResult> {
    return this.request({ method: 'POST', path: '/api/disconnect', body: input, idempotent: true }, options);
  }

  /** `POST /api/unsubscribe`: takes the connections out of a channel (`unsub` code 2000). */
  unsubscribe(input: ChannelActionInput, options?: CallOptions): Promise<UnsubscribeResult> {
    return this.request({ method: 'POST', path: '/api/unsubscribe', body: input, idempotent: true }, options);
  }

  /** `POST /api/subscribe`: subscribes the live connections (WebSocket, SSE, Socket.IO) to a channel. */
  subscribe(input: ChannelActionInput, options?: CallOptions): Promise<SubscribeResult> {
    return this.request({ method: 'POST', path: '/api/subscribe', body: input, idempotent: true }, options);
  }

  /** `GET /api/connections`: one page of live connections on every node, ordered by clientId. */
  connections(query: ConnectionsQuery = {}, options?: CallOptions): Promise<ConnectionsResult> {
    const { user, channel, limit, cursor } = query;
    return this.request(
      { method: 'GET', path: '/api/connections', query: { user, channel, limit, cursor }, idempotent: true },
      options,
    );
  }

  /** `GET /api/info`: every node with its counts. */
  info(options?: CallOptions): Promise<InfoResult> {
    return this.request({ method: 'GET', path: '/api/info', idempotent: true }, options);
  }

  /** `GET /api/channels/{channel}/presence-stats`: counts only. */
  presenceStats(channel: string, options?: CallOptions): Promise<PresenceStatsResult> {
    return this.request({ method: 'GET', path: channelPath(channel, 'presence-stats'), idempotent: true }, options);
  }

  /**
   * `DELETE /api/channels/{channel}/history`: a new epoch; subscribers resuming from before are
   * told `recovered: false`. Never retried: a retry could delete what was published in between.
   */
  removeHistory(channel: string, options?: CallOptions): Promise<Record<string, never>> {
    return this.request({ method: 'DELETE', path: channelPath(channel, 'history'), idempotent: false }, options);
  }

  /**
   * Any endpoint of the server API, for routes this client has no method for yet (or plugins'
   * routes under the same API key). Mark it `idempotent` only if sending it twice is harmless.
   */
  request<T>(endpoint: Endpoint, options?: CallOptions): Promise<T> {
    return request<T>(this.#settings, endpoint, options);
  }
}

/** A fresh idempotency key (a random UUID). */
export function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}
