/**
 * The Herald client: one logical connection over the best transport that works, the app's
 * subscriptions with their stream positions, and requests that survive reconnects.
 *
 * Connecting tries the transports in order. One that fails to open without the hub saying why
 * (a proxy refusing the WebSocket upgrade, a buffering proxy that never lets SSE through) is
 * skipped at once for the next; once a fallback works, reconnects start from it, and every
 * `upgradeProbeMs` a WebSocket is tried on the side and, when it connects, takes over.
 * A connection that ends is reopened after the delay its close code asks for (reconnect.ts);
 * every subscription resumes from its position on whatever transport comes next.
 */
import { isValidChannel, type AppendInfo, type ChannelState, type ClientInfo, type Position } from '@herald/protocol';
import { Emitter } from './emitter.js';
import { HeraldClientError, closeError } from './errors.js';
import { resolveOptions, type HeraldOptions, type ResolvedOptions } from './options.js';
import { backoffDelay, reconnectDelay } from './reconnect.js';
import { Subscription, type Publication, type SubscribeOptions } from './subscription.js';
import { renewDelay, tokenExpiry } from './token.js';
import { PollTransport } from './transports/poll.js';
import { SseTransport } from './transports/sse.js';
import type { Ended, Host, Opened, RequestMethod, Transport, TransportName } from './transports/transport.js';
import { Requests, type RequestOptions } from './requests.js';
import { WebSocketTransport } from './transports/websocket.js';

/** The connection's state; each variant says what the client is doing about it. */
export type ClientState =
  | { readonly state: 'connecting'; readonly transport: TransportName }
  | { readonly state: 'connected'; readonly transport: TransportName }
  /** Lost; the client reconnects by itself in `retryInMs` (sooner when the browser goes `online`). */
  | { readonly state: 'disconnected'; readonly error: HeraldClientError; readonly retryInMs: number }
  /** Stopped: `close()` was called (no error), or reconnecting cannot help (`error`, e.g. `unauthorized`). */
  | { readonly state: 'closed'; readonly error?: HeraldClientError };

export interface ClientEvents {
  state: ClientState;
  /**
   * The backend subscribed this client to a channel (`POST /api/subscribe`, the token's `subs`):
   * the subscription is live; listen for its publications. After a reconnect the SDK resumes it
   * like any other, which needs the token to permit the channel (`channels` patterns or `subs`).
   */
  subscription: Subscription;
}

export interface PublishOptions extends RequestOptions {
  readonly event?: string;
  /**
   * Makes retries safe: the hub applies one key once per channel within 5 minutes. Default: a
   * random key per `publish` call, reused by the SDK's own retries. Pass your own to retry a
   * call that was rejected (for example after `timeout`).
   */
  readonly idempotencyKey?: string;
  /** Live only: not stored, no offset, never replayed; not retried either. */
  readonly ephemeral?: boolean;
  /** Opens a text stream (`data` is its first text); the answer's offset is the stream's id (docs/streams.md). */
  readonly stream?: { readonly status: 'open' };
  /** Appends `data` (text) to the stream `to`; a terminal `status` closes it. */
  readonly append?: AppendInfo;
}

export interface HistoryOptions extends RequestOptions {
  readonly limit?: number;
  /** Only publications after this position. */
  readonly since?: Position;
}

export interface HistoryResult<T = unknown> {
  /** Oldest first. */
  readonly publications: readonly Publication<T>[];
  /** The channel's latest position. */
  readonly offset: number;
  readonly epoch: string;
  /** With `since`: whether every publication after it was still there. */
  readonly recovered?: boolean;
}

/** Subscription refusals that will not change by trying again. */
const FINAL_REFUSALS = new Set(['forbidden', 'bad_channel', 'bad_request', 'already_subscribed', 'unauthorized']);
/** `unsub` push code: no longer permitted (UnsubscribeCode.Forbidden). */
const UNSUB_FORBIDDEN = 2403;
/** `unsub` push code: the backend unsubscribed the client (UnsubscribeCode.Server). */
const UNSUB_SERVER = 2000;

const TRANSPORT_CLASSES = { websocket: WebSocketTransport, sse: SseTransport, poll: PollTransport } as const;

export class Herald extends Emitter<ClientEvents> {
  readonly #o: Readonly<ResolvedOptions>;
  readonly #base: string;
  readonly #subs = new Map<string, Subscription>();
  readonly #requests: Requests;
  readonly #watch = new Map<Transport, ReturnType<typeof setTimeout>>();
  /** Failed subscribe attempts per subscription, for the backoff of their retries. */
  readonly #retries = new WeakMap<Subscription, number>();
  #state: ClientState;
  #running = false;
  #transport: Transport | undefined;
  #connected = false;
  #probe: Transport | undefined;
  /** Index of the transport being tried, and of the first one worth trying (earlier ones failed). */
  #index = 0;
  #skip = 0;
  #attempt = 0;
  #clientId: string | undefined;
  #token: { readonly value: string; readonly renewAt: number } | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #probeTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #host: Host;

  /**
   * @param url The hub's base URL (`https://hub.example.com`, or a path prefix behind a proxy).
   * Connecting starts on the next microtask, so subscriptions made right after construction go
   * out with the first connection.
   */
  constructor(url: string | URL, options: HeraldOptions = {}) {
    super();
    this.#o = resolveOptions(options);
    const location = (globalThis as { location?: { href: string } }).location;
    this.#base = new URL(url, location?.href).href.replace(/\/+$/, '');
    this.#state = { state: 'connecting', transport: this.#o.transports[0] as TransportName };
    this.#host = this.#makeHost();
    this.#requests = new Requests(this.#o, () => (this.#connected ? this.#transport : undefined));
    this.#running = true;
    void Promise.resolve().then(() => this.#running && this.#connect());
  }

  get state(): ClientState {
    return this.#state;
  }

  /** The transport in use, when connected. */
  get transport(): TransportName | undefined {
    return this.#connected ? this.#transport?.name : undefined;
  }

  /** The hub's id for this connection (WebSocket, SSE); changes on every reconnect. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** Starts again after `close()` or after a `closed` state (for example once a new token is available). */
  connect(): void {
    if (this.#running) return;
    this.#running = true;
    this.#connect();
  }

  /**
   * Disconnects and stops reconnecting. Pending requests are rejected with `closed`;
   * subscriptions and their positions stay, and resume on `connect()`.
   */
  close(): void {
    if (!this.#running) return;
    this.#stop(undefined);
  }

  /** Follows `channel`. Throws `bad_channel` for an invalid name, `already_subscribed` for a channel already followed. */
  subscribe<T = unknown>(channel: string, options: SubscribeOptions = {}): Subscription<T> {
    if (!isValidChannel(channel)) throw new HeraldClientError('bad_channel', `invalid channel name ${channel}`);
    if (this.#subs.has(channel)) throw new HeraldClientError('already_subscribed', `already subscribed to ${channel}`);
    const sub = new Subscription<T>(channel, options, (s) => this.#unsubscribe(s));
    this.#subs.set(channel, sub as Subscription);
    if (this.#connected) this.#transport?.sync();
    return sub;
  }

  /**
   * Publishes and resolves with the stored position once the hub acknowledged it, which means it
   * is stored. Waits for a connection, and retries after reconnects with the same idempotency key,
   * so it is applied exactly once; rejects after `timeoutMs`. Over SSE and long-polling it goes
   * over HTTP with the client token (which needs the `publish` claim).
   */
  publish(channel: string, data: unknown, options: PublishOptions & { ephemeral: true }): Promise<void>;
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<Position>;
  async publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<Position | void> {
    const ephemeral = options.ephemeral === true;
    const params = {
      channel,
      data,
      ...(options.event === undefined ? {} : { event: options.event }),
      ...(ephemeral ? { ephemeral } : { idempotencyKey: options.idempotencyKey ?? randomKey() }),
      ...(options.stream === undefined ? {} : { stream: options.stream }),
      ...(options.append === undefined ? {} : { append: options.append }),
    };
    const answer = (await this.#request('publish', params, !ephemeral, options)) as Partial<Position>;
    return ephemeral ? undefined : (answer as Position);
  }

  /**
   * Who is subscribed to `channel` now (long-poll clients are not listed: they hold no session).
   * Needs the token's `channels` patterns to cover it; over SSE and long-polling it is read over
   * HTTP with the client token.
   */
  presence(channel: string, options: RequestOptions = {}): Promise<ClientInfo[]> {
    return this.#request('presence', { channel }, true, options).then((r) => (r as { clients: ClientInfo[] }).clients);
  }

  /**
   * The channel's retained publications, oldest first. Needs the token's `channels` patterns to
   * cover it; over SSE and long-polling it is read over HTTP with the client token.
   */
  history<T = unknown>(channel: string, options: HistoryOptions = {}): Promise<HistoryResult<T>> {
    const params = {
      channel,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.since === undefined ? {} : { since: options.since }),
    };
    return this.#request('history', params, true, options) as Promise<HistoryResult<T>>;
  }

  /**
   * Calls `method` on the application's backend (its `rpc` hook) and resolves with the `data` it
   * answered; rejects with its refusal's code, or `hook_unavailable`. Over SSE and long-polling it
   * goes to `POST /api/rpc`. Waits for a connection and is sent again after a lost one, like
   * `history`: a method that changes state should be idempotent (or carry its own key in `data`).
   */
  rpc<T = unknown>(method: string, data?: unknown, options: RequestOptions = {}): Promise<T> {
    const params = data === undefined ? { method } : { method, data };
    return this.#request('rpc', params, true, options).then((r) => (r as { data: T }).data);
  }

  #request(method: RequestMethod, params: Record<string, unknown>, retry: boolean, options: RequestOptions) {
    if (!this.#running) return Promise.reject(new HeraldClientError('closed', 'the client is closed'));
    return this.#requests.add(method, params, retry, options);
  }

  // ---- connection --------------------------------------------------------------------------

  #connect(): void {
    globalThis.addEventListener?.('online', this.#online);
    this.#index = this.#skip;
    this.#open();
  }

  #open(): void {
    const name = this.#o.transports[this.#index] as TransportName;
    const t = this.#create(name);
    this.#transport = t;
    this.#setState({ state: 'connecting', transport: name });
    t.open();
  }

  #create(name: TransportName): Transport {
    const t = new TRANSPORT_CLASSES[name](this.#host);
    this.#watch.set(
      t,
      setTimeout(() => {
        t.close();
        this.#host.ended(t, { code: 1006, reason: `${name} did not connect in time`, verdict: false });
      }, this.#o.connectTimeoutMs),
    );
    return t;
  }

  #unwatch(t: Transport): void {
    clearTimeout(this.#watch.get(t));
    this.#watch.delete(t);
  }

  readonly #online = (): void => {
    if (this.#retryTimer === undefined) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#attempt = 0;
    this.#connect();
  };

  #onOpened(t: Transport, info: Opened): void {
    if (t === this.#probe) {
      // WebSocket works again: it takes over, and the subscriptions resume on it from their positions.
      this.#probe = undefined;
      this.#transport?.close();
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      this.#transport = t;
      this.#index = this.#skip = 0;
      this.#lapse();
    } else if (t !== this.#transport) return;
    else this.#skip = this.#index;
    this.#unwatch(t);
    this.#connected = true;
    this.#attempt = 0;
    this.#clientId = info.clientId;
    this.#setState({ state: 'connected', transport: t.name });
    this.#scheduleRenew(t, info.expiresIn);
    this.#scheduleProbe();
    t.sync();
    this.#requests.flush();
  }

  #onEnded(t: Transport, info: Ended): void {
    this.#unwatch(t);
    if (t === this.#probe) {
      this.#probe = undefined;
      this.#scheduleProbe();
      return;
    }
    if (t !== this.#transport) return;
    const wasConnected = this.#connected && info.unproven !== true;
    this.#drop();
    if (!wasConnected && !info.verdict && this.#index + 1 < this.#o.transports.length) {
      this.#index++;
      this.#open();
      return;
    }
    if (!wasConnected) this.#skip = 0; // the whole round failed: all transports are worth trying again
    const delay = reconnectDelay(info.code, info.reconnect, this.#attempt++, this.#o);
    const error = info.error ?? closeError(info.code, info.reason);
    if (delay === undefined) {
      this.#stop(error);
      return;
    }
    this.#setState({ state: 'disconnected', error, retryInMs: delay });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connect();
    }, delay);
  }

  /** Forgets the current transport; subscriptions wait for the next one. */
  #drop(): void {
    const t = this.#transport;
    this.#transport = undefined;
    this.#connected = false;
    this.#clientId = undefined;
    if (t !== undefined) {
      this.#unwatch(t);
      t.close();
    }
    if (this.#probe !== undefined) {
      this.#unwatch(this.#probe);
      this.#probe.close();
      this.#probe = undefined;
    }
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#probeTimer);
    this.#lapse();
  }

  #lapse(): void {
    for (const sub of this.#subs.values()) if (sub.state === 'subscribed') sub._setState('subscribing');
  }

  #stop(error: HeraldClientError | undefined): void {
    this.#running = false;
    this.#drop();
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    globalThis.removeEventListener?.('online', this.#online);
    this.#requests.rejectAll(error ?? new HeraldClientError('closed', 'the client was closed'));
    this.#setState(error === undefined ? { state: 'closed' } : { state: 'closed', error });
  }

  #setState(state: ClientState): void {
    this.#state = state;
    this._emit('state', state);
  }

  /**
   * A publication that does not follow the position (a gap, another epoch) means this connection
   * cannot be trusted: end it and resume from the position on a new one.
   */
  #resync(t: Transport): void {
    this.#onEnded(t, { code: 4007, reason: 'publication out of order', verdict: true });
  }

  // ---- tokens ------------------------------------------------------------------------------

  async #getToken(fresh: boolean): Promise<string | undefined> {
    const source = this.#o.token;
    if (typeof source !== 'function') return source;
    const cached = this.#token;
    if (!fresh && cached !== undefined && Date.now() < cached.renewAt) return cached.value;
    let value: unknown;
    try {
      value = await source();
    } catch (cause) {
      throw new HeraldClientError('token_failed', 'the token function failed', { cause });
    }
    if (typeof value !== 'string' || value === '') {
      throw new HeraldClientError('token_failed', 'the token function must return a non-empty string');
    }
    const now = Date.now();
    const exp = tokenExpiry(value);
    this.#token = { value, renewAt: exp === undefined ? Infinity : now + renewDelay(exp - now) };
    return value;
  }

  /**
   * Renews the connection's token before it expires: a `refresh` command on WebSocket, a reopened
   * stream on SSE, a new token for the next poll. A failed
   * renewal is left alone: the hub then ends the connection (4003) and the reconnect asks again.
   */
  #scheduleRenew(t: Transport, expiresIn: number | undefined): void {
    clearTimeout(this.#renewTimer);
    if (typeof this.#o.token !== 'function') return;
    // The earlier of the hub's count (whole seconds, rounded up) and the token's own `exp`.
    const fromHub = expiresIn === undefined ? Infinity : Date.now() + renewDelay(expiresIn * 1000);
    const at = Math.min(fromHub, this.#token?.renewAt ?? Infinity);
    if (at === Infinity) return;
    this.#renewTimer = setTimeout(() => {
      t.renew().then(
        (next) => t === this.#transport && this.#scheduleRenew(t, next),
        () => undefined,
      );
    }, at - Date.now());
  }

  #scheduleProbe(): void {
    clearTimeout(this.#probeTimer);
    const t = this.#transport;
    const every = this.#o.upgradeProbeMs;
    if (!every || t === undefined || t.name === 'websocket' || this.#o.transports[0] !== 'websocket') return;
    this.#probeTimer = setTimeout(() => {
      if (this.#transport !== t || !this.#connected) return;
      this.#probe = this.#create('websocket');
      this.#probe.open();
    }, every);
  }

  // ---- subscriptions -----------------------------------------------------------------------

  #unsubscribe(sub: Subscription): void {
    if (this.#subs.get(sub.channel) !== sub) return;
    this.#subs.delete(sub.channel);
    sub._setState('unsubscribed');
    if (this.#connected) this.#transport?.sync();
  }

  #makeHost(): Host {
    const o = this.#o;
    // Callbacks from anything but the current transport (a closed one, a stream being replaced) are ignored.
    const current = (t: Transport, sub?: Subscription): boolean =>
      t === this.#transport && (sub === undefined || this.#subs.get(sub.channel) === sub);
    return {
      base: this.#base,
      fetch: o.fetch,
      WebSocket: o.WebSocket,
      pollTimeoutSeconds: o.pollTimeoutSeconds,
      connectTimeoutMs: o.connectTimeoutMs,
      subs: this.#subs,
      token: (fresh) => this.#getToken(fresh),
      opened: (t, info) => this.#onOpened(t, info),
      ended: (t, info) => this.#onEnded(t, info),
      confirmed: (t, sub, state: ChannelState, report, replay) => {
        if (!current(t, sub)) return;
        this.#retries.delete(sub);
        sub._confirm(state, report);
        for (const pub of replay ?? []) if (!sub._deliver(pub)) return this.#resync(t);
      },
      publication: (t, pub) => {
        const sub = this.#subs.get(pub.channel);
        if (!current(t) || sub?.state !== 'subscribed') return;
        if (!sub._deliver(pub)) this.#resync(t);
      },
      presence: (t, kind, channel, client) => {
        const sub = this.#subs.get(channel);
        if (current(t) && sub?.joinLeave) sub._emit(kind, client);
      },
      refused: (t, sub, error) => {
        if (!current(t, sub)) return;
        if (FINAL_REFUSALS.has(error.code)) {
          this.#subs.delete(sub.channel);
          sub._setState('unsubscribed');
          sub._emit('error', error);
          return;
        }
        const attempt = this.#retries.get(sub) ?? 0;
        this.#retries.set(sub, attempt + 1);
        setTimeout(() => current(t) && t.sync(), backoffDelay(attempt, o));
      },
      serverSubscribed: (t, state) => {
        if (!current(t) || this.#subs.has(state.channel)) return undefined;
        const sub = new Subscription(state.channel, {}, (s) => this.#unsubscribe(s));
        this.#subs.set(sub.channel, sub);
        sub._confirm(state, false);
        this._emit('subscription', sub);
        return sub;
      },
      unsubscribed: (t, sub, code, reason) => {
        if (!current(t, sub)) return;
        if (code === UNSUB_FORBIDDEN) return this.#host.refused(t, sub, new HeraldClientError('forbidden', reason));
        if (code === UNSUB_SERVER) {
          // The backend took the client out: final, the SDK does not subscribe again.
          this.#subs.delete(sub.channel);
          return sub._setState('unsubscribed');
        }
        // The hub lost the channel's position (2500): subscribe again from ours; it answers recovered: false.
        sub._setState('subscribing');
        t.sync();
      },
    };
  }
}

/** 96 random bits, from `crypto.getRandomValues` (available in insecure browser contexts too). */
function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
