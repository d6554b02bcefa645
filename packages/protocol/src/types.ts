/** The shapes that cross the wire (PROTOCOL.md sections 2 and 5). */

/** A stream position: the last publication a client has of a channel. */
export interface Position {
  readonly offset: number;
  readonly epoch: string;
}

/** A publication as every transport delivers it. */
export interface Publication {
  readonly channel: string;
  /** Absent on ephemeral publications. */
  readonly offset?: number;
  readonly epoch?: string;
  readonly data: unknown;
  readonly event?: string;
  readonly ts: number;
  /** The publishing client's `info` claim, when a client published it. */
  readonly info?: unknown;
}

export interface ClientInfo {
  readonly clientId: string;
  readonly userId: string;
  readonly info?: unknown;
}

export type Method = 'connect' | 'subscribe' | 'unsubscribe' | 'publish' | 'presence' | 'history' | 'refresh' | 'ping';

export const METHODS: readonly Method[] = [
  'connect',
  'subscribe',
  'unsubscribe',
  'publish',
  'presence',
  'history',
  'refresh',
  'ping',
];

export interface Command {
  readonly id: number;
  readonly method: Method;
  readonly params: Readonly<Record<string, unknown>>;
}

/** Per-channel state in SSE `herald.connected` and poll answers. */
export interface ChannelState {
  readonly offset: number;
  readonly epoch: string;
  readonly recovered?: boolean;
}

export interface DisconnectInfo {
  readonly code: number;
  readonly reason: string;
  readonly reconnect: boolean;
}

export type Push =
  | { readonly push: 'pub'; readonly pub: Publication }
  | { readonly push: 'join' | 'leave'; readonly channel: string; readonly client: ClientInfo }
  | { readonly push: 'unsub'; readonly channel: string; readonly code: number; readonly reason: string }
  | ({ readonly push: 'disconnect' } & DisconnectInfo);
