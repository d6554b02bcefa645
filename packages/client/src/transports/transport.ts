/**
 * The boundary between the client and its transports. A transport moves frames or events and
 * reports what the hub said; the client decides everything else (positions, reconnects, retries).
 */
import type { ChannelState, ClientInfo } from '@herald/protocol';
import type { HeraldClientError } from '../errors.js';
import type { Publication, Subscription } from '../subscription.js';

export type TransportName = 'websocket' | 'sse' | 'poll';

/** The part of the browser `WebSocket` API the SDK uses; `ws` in Node.js has it too. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: unknown;
  onmessage: unknown;
  onclose: unknown;
  onerror: unknown;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type RequestMethod = 'publish' | 'presence' | 'history' | 'rpc';

export interface Ended {
  /** WebSocket close code; HTTP failures are mapped onto the same codes (README). */
  readonly code: number;
  readonly reason: string;
  /** The hub's own advice, from a disconnect push or `herald.disconnect`. */
  readonly reconnect?: boolean;
  /**
   * True when the hub (not the network) ended it: a close code, a disconnect event, an error
   * answer. A transport that fails to open *without* a verdict is assumed blocked on the way,
   * and the next transport is tried at once.
   */
  readonly verdict: boolean;
  /**
   * The transport reported itself open without having carried anything yet (SSE with nothing
   * subscribed opens no stream), and its first real use failed without a verdict: it counts as
   * never connected, so the next transport is tried at once, as for a failed open.
   */
  readonly unproven?: boolean;
  readonly error?: HeraldClientError;
}

export interface Opened {
  readonly clientId?: string;
  /** Seconds the connection's token is valid for, as the hub counts (WebSocket only). */
  readonly expiresIn?: number;
}

/** What the client gives its transports. Callbacks from a transport that is not current are ignored. */
export interface Host {
  readonly base: string;
  readonly fetch: typeof fetch;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly pollTimeoutSeconds: number;
  /** Grace added to a poll's own timeout before the request counts as hung. */
  readonly connectTimeoutMs: number;
  readonly subs: ReadonlyMap<string, Subscription>;
  /** `fresh`: call the token function even if the cached token is still good. */
  token(fresh: boolean): Promise<string | undefined>;
  opened(t: Transport, info: Opened): void;
  ended(t: Transport, info: Ended): void;
  confirmed(t: Transport, sub: Subscription, state: ChannelState, report: boolean, replay?: Publication[]): void;
  publication(t: Transport, pub: Publication): void;
  presence(t: Transport, kind: 'join' | 'leave', channel: string, client: ClientInfo): void;
  /** The hub refused `sub` (the transport no longer holds it). */
  refused(t: Transport, sub: Subscription, error: HeraldClientError): void;
  /** The hub ended one subscription (WebSocket `unsub` push). */
  unsubscribed(t: Transport, sub: Subscription, code: number, reason: string): void;
  /** The backend subscribed the connection (`sub` push, `herald.subscribed`); the new subscription, if any. */
  serverSubscribed(t: Transport, state: ChannelState & { readonly channel: string }): Subscription | undefined;
}

export interface Transport {
  readonly name: TransportName;
  open(): void;
  /** The subscription set changed: subscribe the new ones, drop the gone ones. */
  sync(): void;
  request(method: RequestMethod, params: Record<string, unknown>): Promise<unknown>;
  /** Renews the connection's token; resolves with its new lifetime in seconds when the hub said. */
  renew(): Promise<number | undefined>;
  /** Ends the transport without reporting it. */
  close(): void;
}
