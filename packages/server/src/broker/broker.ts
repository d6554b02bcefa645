/**
 * The boundary between the hub core and whatever stores and fans out publications.
 * The core owns these interfaces; the memory, Redis and NATS brokers implement them and call
 * back through `BrokerEvents`. Transports never see a broker.
 */
import type { ClientInfo, Position } from '@herald/protocol';

/** A stored or ephemeral publication as it travels between nodes: routing fields plus its JSON. */
export interface PublicationRecord {
  readonly channel: string;
  /** 0 for an ephemeral publication, which has no place in the stream. */
  readonly offset: number;
  /** '' for an ephemeral publication. */
  readonly epoch: string;
  /** The publication's event name, when it has one (SSE puts it on the `event:` line). */
  readonly event?: string;
  /** The publication object of PROTOCOL.md section 2, serialized once, when it was accepted. */
  readonly json: string;
}

/** What the core hands a broker to publish; the broker assigns offset and epoch. */
export interface PublishDraft {
  readonly channel: string;
  readonly dataJson: string;
  readonly event?: string;
  readonly infoJson?: string;
  /** A text stream's member (`"stream":{...}` or `"append":{...}`), stored as the publication's last. */
  readonly streamJson?: string;
  readonly ts: number;
  readonly ephemeral: boolean;
  readonly idempotencyKey?: string;
  /**
   * Compare-and-append (optional, stored publications only): store only while the channel's
   * latest stored offset and epoch are exactly this position; otherwise nothing is stored or fanned
   * out and `publish` rejects with a `TopConflictError`. A writer that validates against a stream's
   * state (Durable Streams: closed, producer sequences) reads the top, decides, and publishes with
   * it, so a concurrent writer on any node makes it read again instead of both landing.
   */
  readonly expectedTop?: Position;
}

/** `publish` with `expectedTop` found another top: nothing was stored. */
export class TopConflictError extends Error {
  constructor(readonly channel: string) {
    super(`the top of ${channel} moved; nothing was published`);
    this.name = 'TopConflictError';
  }
}

export interface PublishResult {
  readonly record: PublicationRecord;
  /** True when the idempotency key was seen before: `record` is the first result, not re-sent. */
  readonly duplicate: boolean;
}

export interface HistoryQuery {
  /** Publications after this position; when absent, the latest `limit` ones. */
  readonly since?: Position;
  /** At most this many publications; 0 asks for the stream's top position only. */
  readonly limit?: number;
  /**
   * Stop once the publications' JSON reaches this many bytes (at least one is returned): replays
   * read in pages within the queue bound. With `since` the page is the oldest ones after it,
   * without it the newest ones. A broker may ignore it (pages are then as long as `limit`).
   */
  readonly maxBytes?: number;
}

export interface HistoryResult {
  /** Oldest first, contiguous offsets. */
  readonly publications: readonly PublicationRecord[];
  /** The stream's latest stored offset (0 when empty) and its epoch. */
  readonly top: Position;
  /** With `since`: whether every publication after it is still retained (and the epoch matches). */
  readonly recovered?: boolean;
}

/** Node-to-node messages that are not publications. */
export type ControlMessage =
  | { readonly kind: 'join' | 'leave'; readonly channel: string; readonly client: ClientInfo }
  | {
      readonly kind: 'disconnect_user';
      readonly userId: string;
      readonly code: number;
      readonly reason: string;
      /** The advice sent with the disconnect; absent: the registry's for the code (no reconnect for codes it does not know). */
      readonly reconnect?: boolean;
    };

/** Which live connections a node request is about: a user's (token `sub`), or one connection. */
export type ConnectionTarget = { readonly user: string } | { readonly client: string };

/**
 * Questions every node answers (`Broker.request`): the server API's actions on live connections
 * and its cluster-wide reads. Plain JSON, so any broker can carry them.
 */
export type NodeRequest =
  | {
      readonly kind: 'disconnect';
      readonly target: ConnectionTarget;
      readonly code: number;
      readonly reason: string;
      readonly reconnect: boolean;
    }
  | { readonly kind: 'unsubscribe' | 'subscribe'; readonly target: ConnectionTarget; readonly channel: string }
  | { readonly kind: 'connections'; readonly user?: string; readonly channel?: string }
  | { readonly kind: 'info' }
  /** Sessions of one user on the node: the cluster-wide per-user cap. */
  | { readonly kind: 'user_sessions'; readonly user: string };

/** What `Broker.request` gathered: one answer per node that answered in time. */
export interface NodeReplies {
  readonly answers: readonly unknown[];
  /** Nodes that were asked but did not answer within the timeout (0 when every node answered). */
  readonly missing: number;
}

export interface BrokerEvents {
  /** A publication of a channel this node subscribed to, in offset order per channel. */
  publication(record: PublicationRecord): void;
  control(message: ControlMessage): void;
  /**
   * A `Broker.request` from any node, this one included: the answer (any JSON value) goes back
   * to the asking node. Absent, or rejecting: the node answers `null`.
   */
  request?(message: NodeRequest): Promise<unknown>;
  /**
   * The broker lost or regained its connection; the hub reports it on `/readyz`. `true` after a
   * loss comes only once every subscribed channel is delivered again: the core then reads history
   * to fill what was dropped meanwhile (or tells subscribers they lost their position).
   */
  readiness(ready: boolean): void;
}

export interface Broker {
  readonly name: string;
  /** Connects; resolves once publish and subscribe work. */
  start(events: BrokerEvents): Promise<void>;
  close(): Promise<void>;
  readonly ready: boolean;
  /**
   * Stores a non-ephemeral publication in history and fans it out to every subscribed node, as
   * one atomic step per channel, so history order and delivery order are the same. Resolves only
   * after the publication is stored: an acknowledged publication is always recoverable.
   */
  publish(draft: PublishDraft): Promise<PublishResult>;
  /** Resolves once this node receives the channel's publications. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  history(channel: string, query: HistoryQuery): Promise<HistoryResult>;
  /**
   * `history` answered without a promise, offered by a broker whose history is in this process
   * (the embedded one): a subscribe then completes in one step. Brokers across a network omit it.
   */
  historyNow?(channel: string, query: HistoryQuery): HistoryResult;
  /** Channel-scoped messages go to the nodes subscribed to that channel; others to all nodes. */
  broadcast(message: ControlMessage): Promise<void>;
  /**
   * Asks every started node on the backend, this one included, and gathers their answers
   * (`BrokerEvents.request`). Resolves once every node that was asked has answered, or at
   * `timeoutMs` with what came and the count of the silent ones: a node lost mid-request delays
   * the answer, it never hangs it. Rejects only when the request could not be sent at all.
   */
  request(message: NodeRequest, timeoutMs: number): Promise<NodeReplies>;
  /**
   * Deletes a channel's history and starts it on a new epoch (offsets from 1 again), on every
   * node: a position from before can never be recovered, so a resuming subscriber is told
   * `recovered: false`, never given a silent gap. Idempotency keys seen before stay seen.
   */
  removeHistory(channel: string): Promise<void>;
  /** A small key-value store on the same backend, for plugins' metadata (optional). */
  readonly metadata?: MetadataStore;
}

/** A value of the metadata store with its version (versions never repeat, even across deletes). */
export interface MetadataEntry {
  readonly value: string;
  readonly version: number;
}

/**
 * A small key-value store shared by every node on the backend, for metadata that must outlive
 * any one node (Durable Streams keeps each stream's content type, expiry and producer state
 * here). It lives where publications live: a Redis or NATS store survives the loss of a node;
 * the memory store lives as long as its process. Writes are compare-and-set on the version.
 */
export interface MetadataStore {
  get(key: string): Promise<MetadataEntry | undefined>;
  /**
   * Writes `value` when the key's version is still `expected` (0: the key must not exist;
   * undefined: whatever it is) and resolves with the new version; resolves undefined, writing
   * nothing, when the version was another.
   */
  put(key: string, value: string, expected?: number): Promise<number | undefined>;
  /**
   * Deletes the key when its version is still `expected` (undefined: whatever it is); true when
   * this call deleted it, false when it was missing or had another version.
   */
  delete(key: string, expected?: number): Promise<boolean>;
}

export interface ChannelCount {
  readonly channel: string;
  readonly subscribers: number;
}

/** Who is subscribed where, shared by every node on the same backend. */
export interface PresenceStore {
  add(channel: string, client: ClientInfo): Promise<void>;
  /** `add` without a promise, offered by a store in this process (see `Broker.historyNow`). */
  addNow?(channel: string, client: ClientInfo): void;
  remove(channel: string, clientId: string): Promise<void>;
  list(channel: string): Promise<ClientInfo[]>;
  /** Channels with at least one present client. */
  channels(): Promise<ChannelCount[]>;
  close(): Promise<void>;
}

export interface HistoryLimits {
  /** Publications kept per channel. */
  readonly size: number;
  /** Seconds a publication is kept. */
  readonly ttlSeconds: number;
}

/** How long an idempotency key is remembered (PROTOCOL.md section 4). */
export const IDEMPOTENCY_WINDOW_MS = 5 * 60 * 1000;
