/**
 * The Socket.IO face of the hub: event names and payload shapes (docs/socketio.md). This is a
 * public contract like PROTOCOL.md: names and shapes here only ever grow.
 *
 * Naming rules that keep it collision-free:
 * - Commands are the client's events; every one may carry an ack and gets exactly one answer.
 * - The hub's own events start with `herald.`: the hub refuses publications whose event name
 *   starts with `herald.` (`reserved_event`), so no publication can ever impersonate them.
 * - A publication with an event name is emitted under that name as `(data, publication)`;
 *   without one, or when the name is one a Socket.IO client keeps for itself, it is emitted as
 *   `message` with `(publication)`.
 */
import type { ClientInfo, DisconnectInfo, ErrorCode, Publication, WireError } from '@herald/protocol';

/** Client → hub. */
export const COMMANDS = ['subscribe', 'unsubscribe', 'publish', 'presence', 'history', 'refresh', 'rpc'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** Hub → client, besides publications. */
export const HERALD_EVENTS = {
  /** Right after the Socket.IO `connect`: who the hub thinks this client is. */
  connected: 'herald.connected',
  join: 'herald.join',
  leave: 'herald.leave',
  /** The hub ended one subscription; the connection goes on. */
  unsubscribed: 'herald.unsubscribed',
  /** The backend subscribed the connection (`POST /api/subscribe`, a token's `subs`): `{channel, offset, epoch}`. */
  subscribed: 'herald.subscribed',
  /** Sent just before the hub ends the connection (not for 4004: the client cannot take more). */
  disconnect: 'herald.disconnect',
  /** The answer to a command sent without an ack, when that command failed. */
  error: 'herald.error',
} as const;

/** Where publications without an event name go (Socket.IO's `send()` / `message` convention). */
export const MESSAGE_EVENT = 'message';

/**
 * Names a Socket.IO client reserves (socket.io-client's RESERVED_EVENTS), plus `message` whose
 * listeners take `(publication)`: publications named like this are delivered on `message`.
 */
export const CLIENT_RESERVED_EVENTS: ReadonlySet<string> = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
  MESSAGE_EVENT,
]);

/** The Socket.IO event a publication is emitted under. */
export function publicationEventName(event: string | undefined): string {
  return event === undefined || CLIENT_RESERVED_EVENTS.has(event) ? MESSAGE_EVENT : event;
}

/** Every ack: `{ok: true, ...result}` or `{ok: false, error: {code, message}}`. */
export type Ack<T extends object = Record<never, never>> = ({ ok: true } & T) | { ok: false; error: WireError };

export interface SubscribeParams {
  channel: string;
  /** Resume after this position: the missed publications follow the ack as ordinary events. */
  since?: { offset: number; epoch: string };
  joinLeave?: boolean;
}
export interface SubscribeResult {
  channel: string;
  offset: number;
  epoch: string;
  /** Present when `since` was given. */
  recovered?: boolean;
}
export interface PublishParams {
  channel: string;
  data: unknown;
  event?: string;
  ephemeral?: boolean;
  idempotencyKey?: string;
}
export type PublishResult = { offset: number; epoch: string } | Record<never, never>;
export interface HistoryParams {
  channel: string;
  limit?: number;
  since?: { offset: number; epoch: string };
}
export interface HistoryResult {
  publications: Publication[];
  offset: number;
  epoch: string;
  recovered?: boolean;
}

export interface ConnectedEvent {
  clientId: string;
  /** Absent for anonymous clients. */
  userId?: string;
  /** Seconds until the token expires; absent when it never does. */
  expiresIn?: number;
}
export interface JoinLeaveEvent {
  channel: string;
  client: ClientInfo;
}
export interface UnsubscribedEvent {
  channel: string;
  code: number;
  reason: string;
}
export type DisconnectEvent = DisconnectInfo;
export interface ErrorEvent {
  /** The command that failed (or the unknown event name). */
  event: string;
  code: ErrorCode;
  message: string;
}

/** What `connect_error` carries in `err.data` when the hub refuses a connection. */
export interface ConnectErrorData {
  code: ErrorCode;
  message: string;
}
