/**
 * The Pusher commands, run by the connection's command session in order, under its rate and its
 * backpressure (`CommandSessionOptions.commands`): subscribe with each channel type's signature
 * check, unsubscribe, `pusher:signin`, and `client-*` events. A HeraldError thrown here reaches
 * the client as `pusher:subscription_error` (subscribe) or `pusher:error` (connection.ts).
 */
import { HeraldError, type Position } from '@herald/protocol';
import type { Answer, Credentials, Params, ProtocolCommand, Session, SubscribeOptions } from '@herald/server';
import {
  channelType,
  heraldChannel,
  isCacheChannel,
  isValidPusherChannel,
  userChannel,
  type ChannelType,
} from './channels.js';
import type { PusherConnection } from './connection.js';
import { message, type PusherOrigin } from './messages.js';
import { channelAuthorized, userAuthorized } from './signatures.js';

/** What a command answers to: the connection, and the event (and channel) it came as. */
export interface PusherRef {
  readonly connection: PusherConnection;
  readonly event: string;
  readonly channel?: string;
}

/** The method every `client-*` event runs as. */
export const CLIENT_EVENT = 'pusher:client_event';

function unauthorized(what: string): HeraldError {
  return new HeraldError('unauthorized', what);
}

function channelName(params: Params): string {
  const name = params.channel;
  if (!isValidPusherChannel(name)) {
    throw new HeraldError('bad_channel', 'Invalid channel name: 1 to 164 of A-Z a-z 0-9 _ - = @ , . ;');
  }
  return name;
}

interface Member {
  readonly userId: string;
  readonly info?: unknown;
}

/** Checks the subscription's signature for the channel's type; the presence member it names, if any. */
function authorize(connection: PusherConnection, name: string, type: ChannelType, params: Params): Member | undefined {
  const { app, socketId } = connection;
  switch (type) {
    case 'public':
      return undefined;
    case 'private':
    case 'encrypted':
      if (!channelAuthorized(app, socketId, name, params.auth)) throw unauthorized('Invalid signature');
      return undefined;
    case 'user':
      if (connection.user === undefined || name !== userChannel(connection.user)) {
        throw unauthorized('Only the signed-in user may subscribe to its #server-to-user- channel');
      }
      return undefined;
    case 'presence': {
      const channelData = params.channel_data;
      if (typeof channelData !== 'string') throw unauthorized('channel_data is required on presence channels');
      if (!channelAuthorized(app, socketId, name, params.auth, channelData)) throw unauthorized('Invalid signature');
      let parsed: unknown;
      try {
        parsed = JSON.parse(channelData);
      } catch {
        throw new HeraldError('bad_request', 'channel_data must be JSON');
      }
      const { user_id: userId, user_info: info } = (parsed ?? {}) as { user_id?: unknown; user_info?: unknown };
      if ((typeof userId !== 'string' && typeof userId !== 'number') || String(userId) === '') {
        throw new HeraldError('bad_request', 'channel_data must hold a user_id');
      }
      return info === undefined ? { userId: String(userId) } : { userId: String(userId), info };
    }
  }
}

const subscribe: ProtocolCommand<PusherRef> = async (session, params, { connection }) => {
  const name = channelName(params);
  const type = channelType(name);
  const member = authorize(connection, name, type, params);
  const { hub, app } = connection;
  const channel = heraldChannel(app.id, name);
  // A cache channel starts from its last event: the subscribe resumes from just before it, so
  // the event and anything published meanwhile arrive once each, in order.
  let since: Position | undefined;
  const cache = isCacheChannel(name);
  if (cache) {
    const last = (await hub.history(channel, { limit: 1 })).publications.at(-1);
    if (last !== undefined) since = { offset: last.offset - 1, epoch: last.epoch };
  }
  const options: SubscribeOptions = {
    joinLeave: type === 'presence',
    ...(member === undefined ? {} : { member }),
    ...(since === undefined ? {} : { since }),
  };
  const outcome = await hub.subscribe(session, channel, options);
  let data: object = {};
  if (member !== undefined) {
    connection.presenceUser.set(name, member.userId);
    data = { presence: connection.trackMembers(name, await hub.presence(channel)) };
  }
  connection.send(message('pusher_internal:subscription_succeeded', data, name));
  if (cache && since === undefined) {
    connection.send(message('pusher:cache_miss', {}, name));
    connection.hooks.cacheMiss?.(app, name);
  }
  return { method: 'subscribe', channel, outcome } satisfies Answer;
};

const unsubscribe: ProtocolCommand<PusherRef> = (session, params, { connection }) => {
  const name = channelName(params);
  connection.hub.unsubscribe(session, heraldChannel(connection.app.id, name));
  connection.forgetMembers(name);
  return undefined;
};

/** `pusher:signin`: the app's user-auth endpoint signed `socket_id::user::user_data`. */
const signin: ProtocolCommand<PusherRef> = (session, params, { connection }) => {
  const userData = params.user_data;
  if (typeof userData !== 'string') throw unauthorized('user_data is required');
  if (!userAuthorized(connection.app, connection.socketId, userData, params.auth))
    throw unauthorized('Invalid signature');
  let id: unknown;
  try {
    id = (JSON.parse(userData) as { id?: unknown } | null)?.id;
  } catch {
    throw new HeraldError('bad_request', 'user_data must be JSON');
  }
  if (typeof id !== 'string' || id === '') throw new HeraldError('bad_request', 'user_data must hold a string id');
  // Pusher users live in their app's namespace: terminating `alice` of one app leaves another's alone.
  const credentials: Credentials = { ...session.credentials, userId: `${connection.prefix}${id}` };
  connection.hub.signIn(session, credentials);
  connection.user = id;
  connection.send(message('pusher:signin_success', { user_data: userData }));
  return undefined;
};

/** A `client-*` event: relayed to the channel's other subscribers, never stored, never back to the sender. */
const clientEvent: ProtocolCommand<PusherRef> = async (session, params, { connection }) => {
  const { app, hub } = connection;
  if (app.clientEvents === false) throw new HeraldError('forbidden', 'Client events are not enabled for this app');
  const name = channelName(params);
  const type = channelType(name);
  if (type !== 'private' && type !== 'presence' && type !== 'encrypted') {
    throw new HeraldError('forbidden', 'Client events are only allowed on private and presence channels');
  }
  const channel = heraldChannel(app.id, name);
  if (!session.subscriptions.has(channel)) {
    throw new HeraldError('forbidden', `Subscribe to ${name} before sending client events on it`);
  }
  if (!connection.takeClientEvent()) {
    throw new HeraldError('rate_limited', 'Client event rejected - more than 10 per second');
  }
  const userId = connection.presenceUser.get(name);
  const origin: PusherOrigin = { socket_id: connection.socketId, ...(userId === undefined ? {} : { user_id: userId }) };
  await hub.publish(
    { channel, event: params.event, data: params.data ?? null, ephemeral: true },
    publisher(session, channel, origin),
  );
  return undefined;
};

/** The session as the publisher of one client event: its origin travels in the publication's `info`. */
function publisher(session: Session, channel: string, origin: PusherOrigin): Credentials {
  const info = { pusher: origin };
  return {
    ...session.credentials,
    info,
    infoJson: JSON.stringify(info),
    canPublish: (c) => c === channel,
  };
}

export const PUSHER_COMMANDS: ReadonlyMap<string, ProtocolCommand<PusherRef>> = new Map([
  ['pusher:subscribe', subscribe],
  ['pusher:unsubscribe', unsubscribe],
  ['pusher:signin', signin],
  ['pusher:pong', () => undefined],
  [CLIENT_EVENT, clientEvent],
]);
