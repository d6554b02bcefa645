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
  /** On a publication that opens a text stream, or the text so far rolled up (docs/streams.md). */
  readonly stream?: StreamInfo;
  /** On an append to a text stream: `data` is the text to add (docs/streams.md). */
  readonly append?: AppendInfo;
}

/** How a text stream ends; `open` while it goes on. */
export type StreamStatus = 'open' | 'done' | 'error' | 'aborted';

export interface StreamInfo {
  /** The stream's id: the offset of the publication that opened it (absent on that publication itself). */
  readonly id?: number;
  readonly status: StreamStatus;
  /** Present when this publication holds the stream's text so far, through its `offset`. */
  readonly rolledUp?: true;
}

export interface AppendInfo {
  /** The stream appended to. */
  readonly to: number;
  /** The first offset this publication covers when it merges several appends (absent: just its own). */
  readonly from?: number;
  /** Set on the append that closes the stream. */
  readonly status?: Exclude<StreamStatus, 'open'>;
}

export interface ClientInfo {
  readonly clientId: string;
  readonly userId: string;
  readonly info?: unknown;
}

export type Method =
  'connect' | 'subscribe' | 'unsubscribe' | 'publish' | 'presence' | 'history' | 'refresh' | 'ping' | 'rpc';

export const METHODS: readonly Method[] = [
  'connect',
  'subscribe',
  'unsubscribe',
  'publish',
  'presence',
  'history',
  'refresh',
  'ping',
  /** Extension: a call to the application's backend through its `rpc` hook (docs/protocol-extensions.md). */
  'rpc',
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
