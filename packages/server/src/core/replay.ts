/**
 * The rest of a recovery, after the subscribe answer: missed publications read from history in
 * pages bounded in bytes, each read only when the client has taken the previous one, until they
 * meet the live publications held meanwhile. So a client resuming from far back never makes the
 * hub hold its whole replay (guarantee 4), and still gets every publication once, in order
 * (guarantee 2): a page that cannot continue the last one ends the subscription loudly.
 */
import { CloseCode, closeInfo, type DisconnectInfo, type Position } from '@herald/protocol';
import type { Broker } from '../broker/broker.js';
import { mergeRecovery } from './recovery.js';
import { rollUp } from './roll-up.js';
import type { ChannelSubscription, ClientSession, QueueLimits } from './session.js';
import type { HubStats } from './stats.js';

/** How a transport lets a replay wait for its client. */
export interface Pacer {
  /**
   * Resolves true once the client holds at most the queue bound unread (at once when it already
   * does); false when it took nothing for a long time, or went away.
   */
  drained(): Promise<boolean>;
}

export interface ReplayOwner {
  readonly broker: Broker;
  readonly limits: QueueLimits;
  readonly stats: HubStats;
  lostPosition(subscription: ChannelSubscription): void;
  endSession(session: ClientSession, info: DisconnectInfo): void;
}

/** Pages in a row that bring nothing new before the replay gives up on meeting the held ones. */
const MAX_IDLE_PAGES = 2;

const SLOW_CONSUMER = closeInfo(CloseCode.SlowConsumer);

/** Whether the subscription can still be written to. */
function current(sub: ChannelSubscription): boolean {
  return !sub.session.closed && sub.session.subscriptions.get(sub.channel) === sub;
}

/**
 * Writes pages from `from` on until they meet the held live publications. Resolves true when the
 * subscription may go live (the caller then releases what is held), false when it ended instead:
 * the client was too slow (4004), left, or the position could not be continued (the hub's
 * `lostPosition`: `unsub` 2500, or 4007 on SSE).
 */
export async function replayRest(
  owner: ReplayOwner,
  sub: ChannelSubscription,
  from: Position,
  pacer: Pacer,
): Promise<boolean> {
  let position = from;
  let idle = 0;
  for (;;) {
    if (!(await pacer.drained())) {
      if (!current(sub)) return false;
      owner.stats.slowConsumerDisconnects++;
      owner.endSession(sub.session, SLOW_CONSUMER);
      return false;
    }
    if (!current(sub)) return false;
    let merged;
    try {
      const history = await owner.broker.history(sub.channel, {
        since: position,
        maxBytes: owner.limits.maxQueueBytes,
      });
      if (!current(sub)) return false;
      merged = mergeRecovery(position, history, sub.held);
    } catch {
      merged = undefined;
    }
    if (merged?.recovered !== true) {
      owner.lostPosition(sub);
      return false;
    }
    for (const record of rollUp(merged.publications)) sub.session.replay(record, sub);
    if (!merged.more) return true;
    idle = merged.publications.length === 0 ? idle + 1 : 0;
    if (idle >= MAX_IDLE_PAGES) {
      // History has nothing new, yet it does not reach the held publications: a broker hole.
      owner.lostPosition(sub);
      return false;
    }
    position = merged.position;
  }
}
