/**
 * The server API's actions and reads over every node sharing the broker: each asks all nodes
 * (`Broker.request`; node-answers.ts answers) and adds up their answers. A node that does not
 * answer within NODE_REQUEST_TIMEOUT_MS is reported in `missingNodes` instead of failing the
 * call: what the other nodes did is done.
 */
import { HeraldError, isValidChannel } from '@herald/protocol';
import type { ConnectionTarget, NodeReplies, NodeRequest } from '../broker/broker.js';
import type { Hub } from './hub.js';
import type { ConnectionView, ConnectionsAnswer, CountAnswer, NodeView } from './node-answers.js';

/** How long a cluster-wide call waits for the slowest node. */
export const NODE_REQUEST_TIMEOUT_MS = 3_000;

/** What every cluster-wide answer may add: nodes that did not answer in time. */
export interface Unanswered {
  readonly missingNodes?: number;
}

async function ask(hub: Hub, message: NodeRequest): Promise<NodeReplies> {
  if (!hub.broker.ready) throw new HeraldError('broker_unavailable', 'the broker is not connected; nothing was done');
  try {
    return await hub.broker.request(message, NODE_REQUEST_TIMEOUT_MS);
  } catch {
    throw new HeraldError('broker_unavailable', 'the broker did not take the request; nothing was done');
  }
}

function missing(replies: NodeReplies): Unanswered {
  return replies.missing === 0 ? {} : { missingNodes: replies.missing };
}

function isCount(value: unknown): value is CountAnswer {
  return typeof value === 'object' && value !== null && typeof (value as CountAnswer).count === 'number';
}

function total(replies: NodeReplies): number {
  let sum = 0;
  for (const answer of replies.answers) if (isCount(answer)) sum += answer.count;
  return sum;
}

export async function disconnectEverywhere(
  hub: Hub,
  target: ConnectionTarget,
  info: { code: number; reason: string; reconnect: boolean },
): Promise<{ disconnected: number } & Unanswered> {
  const replies = await ask(hub, { kind: 'disconnect', target, ...info });
  return { disconnected: total(replies), ...missing(replies) };
}

export async function unsubscribeEverywhere(
  hub: Hub,
  target: ConnectionTarget,
  channel: string,
): Promise<{ unsubscribed: number } & Unanswered> {
  const replies = await ask(hub, { kind: 'unsubscribe', target, channel });
  return { unsubscribed: total(replies), ...missing(replies) };
}

export async function subscribeEverywhere(
  hub: Hub,
  target: ConnectionTarget,
  channel: string,
): Promise<{ subscribed: number } & Unanswered> {
  const replies = await ask(hub, { kind: 'subscribe', target, channel });
  return { subscribed: total(replies), ...missing(replies) };
}

/** Sessions of a user on every node: the cluster-wide per-user cap. */
export async function userSessionsEverywhere(hub: Hub, user: string): Promise<number> {
  return total(await ask(hub, { kind: 'user_sessions', user }));
}

export interface ConnectionsQuery {
  readonly user?: string;
  readonly channel?: string;
  /** At most this many in the page. */
  readonly limit: number;
  /** The `next` of the previous page: connections with a larger clientId. */
  readonly after?: string;
}

/**
 * One page of the live connections of every node, ordered by clientId. Each page asks every node
 * again: a connection that opened or closed between two pages is in one page or in none.
 */
export async function connectionsEverywhere(
  hub: Hub,
  query: ConnectionsQuery,
): Promise<{ connections: ConnectionView[]; next?: string } & Unanswered> {
  if (query.channel !== undefined && !isValidChannel(query.channel)) {
    throw new HeraldError('bad_channel', 'channel name is not valid');
  }
  const replies = await ask(hub, {
    kind: 'connections',
    ...(query.user === undefined ? {} : { user: query.user }),
    ...(query.channel === undefined ? {} : { channel: query.channel }),
  });
  const all: ConnectionView[] = [];
  for (const answer of replies.answers) {
    const list = (answer as ConnectionsAnswer | null)?.connections;
    if (Array.isArray(list)) all.push(...list);
  }
  const after = query.after;
  const sorted = all
    .filter((c) => after === undefined || c.clientId > after)
    .sort((x, y) => (x.clientId < y.clientId ? -1 : x.clientId > y.clientId ? 1 : 0));
  const connections = sorted.slice(0, query.limit);
  const last = connections.at(-1);
  const next = sorted.length > query.limit && last !== undefined ? { next: last.clientId } : {};
  return { connections, ...next, ...missing(replies) };
}

/** Every node with its counts, ordered by name; `node` is the one that answered the call. */
export async function clusterInfo(hub: Hub): Promise<{ node: string; nodes: NodeView[] } & Unanswered> {
  const replies = await ask(hub, { kind: 'info' });
  const nodes = replies.answers
    .filter((a): a is NodeView => typeof a === 'object' && a !== null && typeof (a as NodeView).node === 'string')
    .sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : 0));
  return { node: hub.node, nodes, ...missing(replies) };
}
