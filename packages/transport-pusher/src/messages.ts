/**
 * Pusher protocol 7 messages as JSON text, pure: `{"event", "channel"?, "data"}` where `data` is
 * itself JSON text (what Pusher's servers send and pusher-js parses), plus the one encoding of a
 * Herald publication for every Pusher subscriber, and the close and error codes.
 */
import { closeCodeInfo, type DisconnectInfo } from '@herald/protocol';
import { defineEncoder, type PublicationRecord } from '@herald/server';
import { appIdOf, appPrefix, pusherChannel } from './channels.js';

/** A server message; `data` is sent as JSON text unless it is text already. */
export function message(event: string, data: unknown, channel?: string): string {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  return channel === undefined
    ? `{"event":${JSON.stringify(event)},"data":${JSON.stringify(text)}}`
    : `{"event":${JSON.stringify(event)},"channel":${JSON.stringify(channel)},"data":${JSON.stringify(text)}}`;
}

/** `pusher:error`, whose `data` is an object (as Pusher sends it). */
export function errorMessage(code: number | null, text: string): string {
  return JSON.stringify({ event: 'pusher:error', data: { code, message: text } });
}

/** The event a Herald publication without one reaches Pusher clients as. */
export const DEFAULT_EVENT = 'message';

/** What a publication carries for Pusher in its `info` (docs/pusher.md): who sent it. */
export interface PusherOrigin {
  /** The connection that triggered it, which does not get it back (client events, API `socket_id`). */
  readonly socket_id?: string;
  /** The signed-in or presence user of a client event on a presence channel. */
  readonly user_id?: string;
}

/** One publication as every Pusher subscriber gets it; `frame` is filled by the first WebSocket that sends it. */
export interface PusherPublication {
  readonly json: string;
  /** The socket_id that must not receive it. */
  readonly from: string | undefined;
  frame?: Buffer;
}

interface HeraldPublication {
  readonly event?: string;
  readonly data?: unknown;
  readonly info?: { readonly pusher?: PusherOrigin };
}

/**
 * The publication as a Pusher message, built once per publication (the Delivery caches it).
 * Text data goes out as it is (Pusher's SDKs send JSON text, and encrypted channels' ciphertext
 * must be relayed untouched); any other JSON value, from a Herald publisher, as its JSON text.
 */
export const pusherPublication = defineEncoder((record: PublicationRecord): PusherPublication => {
  const pub = JSON.parse(record.json) as HeraldPublication;
  const appId = appIdOf(record.channel);
  const channel = appId === undefined ? record.channel : (pusherChannel(appPrefix(appId), record.channel) ?? '');
  const origin = pub.info?.pusher;
  const data = typeof pub.data === 'string' ? pub.data : JSON.stringify(pub.data ?? null);
  const fields: Record<string, string> = { event: pub.event ?? DEFAULT_EVENT, channel, data };
  if (typeof origin?.user_id === 'string') fields.user_id = origin.user_id;
  return { json: JSON.stringify(fields), from: typeof origin?.socket_id === 'string' ? origin.socket_id : undefined };
});

/**
 * Pusher's close codes (4000-4099: do not reconnect; 4100-4199: reconnect after a backoff;
 * 4200-4299: reconnect at once) and the `pusher:error` codes the hub uses.
 */
export const PusherCode = {
  /** The app key is not known. */
  AppNotFound: 4001,
  /** The connection path is not `/app/{key}`. */
  PathNotFound: 4005,
  /** `protocol` is not a version number. */
  InvalidVersion: 4006,
  /** A protocol version other than 5 to 7. */
  UnsupportedProtocol: 4007,
  /** No `protocol` in the connection URL. */
  NoProtocol: 4008,
  /** Unauthorized: a bad signature, a terminated user, a message the hub cannot use. */
  Unauthorized: 4009,
  /** Over capacity or rate limited: reconnect after a backoff. */
  OverCapacity: 4100,
  /** Reconnect now (the node is draining, or lost its broker). */
  Reconnect: 4200,
  /** The client answered no `pusher:ping` in time. */
  PongNotReceived: 4201,
  /** A `client-*` event over the rate limit (an error; the connection goes on). */
  ClientEventRejected: 4301,
} as const;

/** The Pusher close code for a hub disconnect: the registry's advice decides the class. */
export function pusherCloseCode(info: DisconnectInfo): number {
  if (info.code === 1000) return 1000;
  const policy = closeCodeInfo(info.code)?.retry;
  if (!info.reconnect) return PusherCode.Unauthorized;
  if (policy === 'backoff' || policy === 'throttled') return PusherCode.OverCapacity;
  return PusherCode.Reconnect;
}
