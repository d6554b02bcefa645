/**
 * What one node does and answers when the server API acts on live connections cluster-wide
 * (`Broker.request`, core/cluster.ts asks): it acts on its own sessions only and reports counts
 * and lists that the asking node adds up. Every answer names the node.
 *
 * Long-poll waiters are sessions too, but not lasting connections: a disconnect answers a waiting
 * poll at once (with the disconnect in its answer) and counts it; subscribe and unsubscribe leave
 * polls alone (the next poll asks for its own channels again), and the connection list omits them.
 */
import type { NodeRequest } from '../broker/broker.js';
import type { Hub } from './hub.js';
import type { Session } from './session.js';

/** One live connection, as `GET /api/connections` lists it. */
export interface ConnectionView {
  readonly clientId: string;
  /** '' for an anonymous client. */
  readonly userId: string;
  readonly transport: string;
  readonly node: string;
  /** Its channels, in subscription order. */
  readonly channels: readonly string[];
  /** When it connected: epoch milliseconds on its node's clock. */
  readonly connectedAt: number;
}

/** One node's counts, as `GET /api/info` lists them. */
export interface NodeView {
  readonly node: string;
  /** Open sessions, waiting long-polls included. */
  readonly connections: number;
  /** The same by transport (every transport that ever had one on this node). */
  readonly transports: Readonly<Record<string, number>>;
  /** Channels with at least one subscriber on this node. */
  readonly channels: number;
  readonly subscriptions: number;
  /** Users with at least one session on this node. */
  readonly users: number;
  readonly publications: number;
}

export interface CountAnswer {
  readonly node: string;
  readonly count: number;
}

export interface ConnectionsAnswer {
  readonly node: string;
  readonly connections: readonly ConnectionView[];
}

const POLL = 'poll';

export function connectionView(hub: Hub, session: Session): ConnectionView {
  return {
    clientId: session.id,
    userId: session.userId,
    transport: session.kind,
    node: hub.node,
    channels: [...session.subscriptions.keys()],
    connectedAt: session.connectedAt,
  };
}

export async function answerNodeRequest(hub: Hub, message: NodeRequest): Promise<unknown> {
  const node = hub.node;
  switch (message.kind) {
    case 'disconnect': {
      const sessions = hub.sessionsOf(message.target);
      const { code, reason, reconnect } = message;
      for (const session of sessions) hub.endSession(session, { code, reason, reconnect });
      return { node, count: sessions.length } satisfies CountAnswer;
    }
    case 'unsubscribe': {
      let count = 0;
      for (const session of hub.sessionsOf(message.target)) {
        if (session.kind !== POLL && hub.serverUnsubscribe(session, message.channel)) count++;
      }
      return { node, count } satisfies CountAnswer;
    }
    case 'subscribe': {
      const sessions = hub.sessionsOf(message.target).filter((s) => s.kind !== POLL);
      const done = await Promise.all(sessions.map((s) => hub.serverSubscribe(s, message.channel)));
      return { node, count: done.filter(Boolean).length } satisfies CountAnswer;
    }
    case 'connections': {
      const { user, channel } = message;
      const sessions = user === undefined ? hub.sessions() : hub.sessionsOf({ user });
      const connections = sessions
        .filter((s) => s.kind !== POLL && (channel === undefined || s.subscriptions.has(channel)))
        .map((s) => connectionView(hub, s));
      return { node, connections } satisfies ConnectionsAnswer;
    }
    case 'info':
      return nodeView(hub);
    case 'user_sessions':
      return { node, count: hub.userSessionCount(message.user) } satisfies CountAnswer;
  }
}

export function nodeView(hub: Hub): NodeView {
  let subscriptions = 0;
  const users = new Set<string>();
  for (const session of hub.sessions()) {
    subscriptions += session.subscriptions.size;
    if (session.userId !== '') users.add(session.userId);
  }
  return {
    node: hub.node,
    connections: hub.sessionCount,
    transports: { ...hub.stats.connections },
    channels: hub.localChannelCount,
    subscriptions,
    users: users.size,
    publications: hub.stats.publications,
  };
}
