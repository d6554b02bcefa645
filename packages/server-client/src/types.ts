/** What the server API takes and answers (PROTOCOL.md section 4, docs/protocol-extensions.md). */
import type { ClientInfo, Position, Publication } from '@herald/protocol';

export type { ClientInfo, Position, Publication };

export interface PublishInput {
  readonly channel: string;
  /** Any JSON value. */
  readonly data: unknown;
  readonly event?: string;
  /** Delivered live only: never stored, no position. */
  readonly ephemeral?: boolean;
  /**
   * Applied once per channel within 5 minutes. Generated when absent, and the same one is sent
   * on every retry of the call. Pass your own to deduplicate across calls (or processes).
   */
  readonly idempotencyKey?: string;
  /**
   * Publish extension fields that integrations register (for example `push`,
   * docs/integrations.md), sent beside the others.
   */
  readonly extensions?: Readonly<Record<string, unknown>>;
}

/** The stored publication's position; `{}` for an ephemeral one. */
export type PublishResult = Position | Record<string, never>;

export interface HistoryQuery {
  /** At most this many (the hub caps it at its history size). 0 asks for the position only. */
  readonly limit?: number;
  /** Publications after this position. */
  readonly since?: Position;
}

export interface HistoryResult extends Position {
  /** Oldest first. */
  readonly publications: Publication[];
  /** With `since`: whether every publication after it was still there. */
  readonly recovered?: boolean;
}

export interface PresenceResult {
  readonly clients: ClientInfo[];
}

export interface ChannelsResult {
  readonly channels: Array<{ readonly channel: string; readonly subscribers: number }>;
}

/** `POST /api/revoke`: a user's tokens issued before `before`, or one token by its `jti`. */
export type RevokeInput =
  | {
      readonly user: string;
      /** Seconds since the epoch. Default: now, on this machine's clock, so a retry revokes the same. */
      readonly before?: number;
    }
  | {
      readonly jti: string;
      /** The token's `exp`: the hub can forget the revocation after it. */
      readonly exp?: number;
    };

export type RevokeResult =
  | { readonly user: string; readonly before: number; readonly expiresAt?: number }
  | { readonly jti: string; readonly expiresAt?: number };

/** Which live connections an action is about: every connection of a user (token `sub`), or one by its clientId. */
export type ConnectionTarget = { readonly user: string } | { readonly client: string };

/** Every answer of a cluster-wide call: nodes that did not answer in time (absent when all did). */
export interface Unanswered {
  readonly missingNodes?: number;
}

export type DisconnectInput = ConnectionTarget & {
  /** 4000 to 4999; default 4008 (disconnected by the server). */
  readonly code?: number;
  /** At most 123 bytes of UTF-8; default: the registry's reason for the code. */
  readonly reason?: string;
  /** `false` keeps the SDK (and Socket.IO clients) from coming back; default: the registry's advice (4008: true). */
  readonly reconnect?: boolean;
};

export type ChannelActionInput = ConnectionTarget & { readonly channel: string };

export interface DisconnectResult extends Unanswered {
  readonly disconnected: number;
}
export interface UnsubscribeResult extends Unanswered {
  readonly unsubscribed: number;
}
export interface SubscribeResult extends Unanswered {
  readonly subscribed: number;
}

export interface ConnectionsQuery {
  readonly user?: string;
  readonly channel?: string;
  /** 1 to 1000; default 100. */
  readonly limit?: number;
  /** The `next` of the previous page. */
  readonly cursor?: string;
}

export interface Connection {
  readonly clientId: string;
  /** '' for an anonymous client. */
  readonly userId: string;
  readonly transport: string;
  readonly node: string;
  readonly channels: string[];
  /** Epoch milliseconds, on its node's clock. */
  readonly connectedAt: number;
}

export interface ConnectionsResult extends Unanswered {
  /** Ordered by clientId. */
  readonly connections: Connection[];
  /** Present when more follow: pass it as `cursor`. */
  readonly next?: string;
}

export interface NodeInfo {
  readonly node: string;
  readonly connections: number;
  readonly transports: Readonly<Record<string, number>>;
  readonly channels: number;
  readonly subscriptions: number;
  readonly users: number;
  readonly publications: number;
}

export interface InfoResult extends Unanswered {
  /** The node that answered. */
  readonly node: string;
  /** Every node on the broker, ordered by name. */
  readonly nodes: NodeInfo[];
}

export interface PresenceStatsResult {
  readonly clients: number;
  readonly users: number;
}
