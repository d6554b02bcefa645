/**
 * The server API's commands on live connections and its cluster-wide reads
 * (docs/protocol-extensions.md, "Acting on live connections"): disconnect, unsubscribe, subscribe,
 * connections, info, presence_stats, history_remove. Each is a route and a batch command like the
 * publishing ones (api-methods.ts); all need the API key.
 */
import { CloseCode, HeraldError, closeCodeInfo, isValidChannel } from '@herald/protocol';
import type { ConnectionTarget } from '../broker/broker.js';
import {
  clusterInfo,
  connectionsEverywhere,
  disconnectEverywhere,
  subscribeEverywhere,
  unsubscribeEverywhere,
} from '../core/cluster.js';
import type { Hub } from '../core/hub.js';
import type { ApiMethod, ApiParams } from './api-methods.js';

/** A WebSocket close reason holds at most 123 bytes. */
const MAX_REASON_BYTES = 123;
const MAX_ID_LENGTH = 200;
export const DEFAULT_CONNECTIONS_LIMIT = 100;
export const MAX_CONNECTIONS_LIMIT = 1000;

function idParam(params: ApiParams, name: string): string | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw new HeraldError('bad_request', `${name} must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  }
  return value;
}

/** `{user}` or `{client}`, exactly one. */
export function targetParam(params: ApiParams): ConnectionTarget {
  const user = idParam(params, 'user');
  const client = idParam(params, 'client');
  if ((user === undefined) === (client === undefined)) {
    throw new HeraldError('bad_request', 'name exactly one of user (a token sub) and client (a clientId)');
  }
  return user === undefined ? { client: client as string } : { user };
}

function channelParam(params: ApiParams): string {
  const channel = params.channel;
  if (channel === undefined) throw new HeraldError('bad_channel', 'channel is required');
  if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
  return channel;
}

/** The code, reason and advice of a disconnect: 4008 by default, any code 4000-4999 otherwise. */
export function disconnectParams(params: ApiParams): { code: number; reason: string; reconnect: boolean } {
  const { code = CloseCode.Disconnected, reason, reconnect } = params;
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 4000 || code > 4999) {
    throw new HeraldError('bad_request', 'code must be an integer from 4000 to 4999');
  }
  const known = closeCodeInfo(code);
  if (reason !== undefined && (typeof reason !== 'string' || Buffer.byteLength(reason) > MAX_REASON_BYTES)) {
    throw new HeraldError('bad_request', `reason must be a string of at most ${MAX_REASON_BYTES} bytes (UTF-8)`);
  }
  if (reconnect !== undefined && typeof reconnect !== 'boolean') {
    throw new HeraldError('bad_request', 'reconnect must be true or false');
  }
  return {
    code,
    reason: reason ?? known?.reason ?? 'disconnected by the server',
    reconnect: reconnect ?? known?.reconnect ?? true,
  };
}

function limitParam(value: unknown): number {
  if (value === undefined) return DEFAULT_CONNECTIONS_LIMIT;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_CONNECTIONS_LIMIT) {
    throw new HeraldError('bad_request', `limit must be an integer from 1 to ${MAX_CONNECTIONS_LIMIT}`);
  }
  return value;
}

/** Clients and distinct users in a channel's presence, on every node. */
export async function presenceStats(hub: Hub, channel: unknown): Promise<{ clients: number; users: number }> {
  const clients = await hub.presence(channel);
  return { clients: clients.length, users: new Set(clients.map((c) => c.userId)).size };
}

/** Each counts as one item against the per-request limit, like a publication: a batch stays bounded. */
const server = { access: 'server', cost: () => 1 } as const;

export const CONNECTION_METHODS: ReadonlyArray<readonly [string, ApiMethod]> = [
  [
    'disconnect',
    { ...server, run: (hub, params) => disconnectEverywhere(hub, targetParam(params), disconnectParams(params)) },
  ],
  [
    'unsubscribe',
    { ...server, run: (hub, params) => unsubscribeEverywhere(hub, targetParam(params), channelParam(params)) },
  ],
  [
    'subscribe',
    { ...server, run: (hub, params) => subscribeEverywhere(hub, targetParam(params), channelParam(params)) },
  ],
  [
    'connections',
    {
      ...server,
      run: (hub, params) => {
        const user = idParam(params, 'user');
        const after = idParam(params, 'cursor');
        const channel = params.channel === undefined ? undefined : channelParam(params);
        return connectionsEverywhere(hub, {
          limit: limitParam(params.limit),
          ...(user === undefined ? {} : { user }),
          ...(channel === undefined ? {} : { channel }),
          ...(after === undefined ? {} : { after }),
        });
      },
    },
  ],
  ['info', { ...server, run: (hub) => clusterInfo(hub) }],
  ['presence_stats', { ...server, run: (hub, params) => presenceStats(hub, channelParam(params)) }],
  [
    'history_remove',
    // Sequential: a batch's publications after it must land in the new epoch, not the old one.
    { ...server, sequential: true, run: (hub, params) => hub.removeHistory(channelParam(params)).then(() => ({})) },
  ],
];
