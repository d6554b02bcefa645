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
  readonly ts: number;
  readonly ephemeral: boolean;
  readonly idempotencyKey?: string;
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
  | { readonly kind: 'disconnect_user'; readonly userId: string; readonly code: number; readonly reason: string };

export interface BrokerEvents {
  /** A publication of a channel this node subscribed to, in offset order per channel. */
  publication(record: PublicationRecord): void;
  control(message: ControlMessage): void;
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
