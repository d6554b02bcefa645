/**
 * Command results and server pushes (PROTOCOL.md section 5): the types the SDK decodes with, and
 * the JSON the hub sends. Publications inside results arrive as JSON text already (each was
 * serialized once, when it was accepted), so results are built by concatenation around them.
 */
import type { ClientInfo, DisconnectInfo, Position, Publication } from './types.js';

export interface ConnectResult {
  readonly clientId: string;
  /** Absent for anonymous clients. */
  readonly userId?: string;
  /** Seconds between the hub's pings. */
  readonly pingInterval: number;
  /** Seconds until the token expires; absent when it never does. */
  readonly expiresIn?: number;
}

export interface SubscribeResult {
  /** The channel's latest stored offset (0 when empty) and its epoch. */
  readonly offset: number;
  readonly epoch: string;
  /** Present when the subscribe asked to resume (`since`). */
  readonly recovered?: boolean;
  /** With `since` and `recovered: true`: the missed publications, oldest first (the first page of them). */
  readonly publications?: readonly Publication[];
}

export type PublishResult = Position | Readonly<Record<string, never>>;

export interface PresenceResult {
  readonly clients: readonly ClientInfo[];
}

export interface HistoryResult {
  readonly publications: readonly Publication[];
  readonly offset: number;
  readonly epoch: string;
  readonly recovered?: boolean;
}

export interface RefreshResult {
  readonly expiresIn?: number;
}

/** The result of each method, for decoding replies by the method that was sent. */
export interface ResultOf {
  readonly connect: ConnectResult;
  readonly subscribe: SubscribeResult;
  readonly unsubscribe: Readonly<Record<string, never>>;
  readonly publish: PublishResult;
  readonly presence: PresenceResult;
  readonly history: HistoryResult;
  readonly refresh: RefreshResult;
  readonly ping: Readonly<Record<string, never>>;
}

/** Written out rather than stringified from an object: the same fields, in the documented order. */
export function connectResultJson(result: ConnectResult): string {
  let json = `{"clientId":${JSON.stringify(result.clientId)}`;
  if (result.userId !== undefined) json += `,"userId":${JSON.stringify(result.userId)}`;
  json += `,"pingInterval":${result.pingInterval}`;
  if (result.expiresIn !== undefined) json += `,"expiresIn":${result.expiresIn}`;
  return `${json}}`;
}

/** A subscribe result; `publicationsJson` (JSON texts) is given exactly when `recovered` is. */
export function subscribeResultJson(
  top: Position,
  recovered?: boolean,
  publicationsJson: readonly string[] = [],
): string {
  const head = `{"offset":${top.offset},"epoch":${JSON.stringify(top.epoch)}`;
  if (recovered === undefined) return `${head}}`;
  return `${head},"recovered":${recovered},"publications":[${publicationsJson.join(',')}]}`;
}

export function historyResultJson(publicationsJson: readonly string[], top: Position, recovered?: boolean): string {
  const r = recovered === undefined ? '' : `,"recovered":${recovered}`;
  return `{"publications":[${publicationsJson.join(',')}],"offset":${top.offset},"epoch":${JSON.stringify(top.epoch)}${r}}`;
}

/** `{"id", "result"}` around a result already in JSON text. */
export function resultReplyJson(id: number, resultJson: string): string {
  return `{"id":${id},"result":${resultJson}}`;
}

export function disconnectPushJson(info: DisconnectInfo): string {
  return JSON.stringify({ push: 'disconnect', code: info.code, reason: info.reason, reconnect: info.reconnect });
}

/** The backend subscribed the connection (`POST /api/subscribe`, a token's `subs`): publications follow. */
export function subPushJson(channel: string, offset: number, epoch: string): string {
  return JSON.stringify({ push: 'sub', channel, offset, epoch });
}

export function unsubPushJson(channel: string, code: number, reason: string): string {
  return JSON.stringify({ push: 'unsub', channel, code, reason });
}

export function joinLeavePushJson(kind: 'join' | 'leave', channel: string, client: ClientInfo): string {
  return JSON.stringify({ push: kind, channel, client });
}
