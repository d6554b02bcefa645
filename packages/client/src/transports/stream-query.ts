/** The query SSE and long-polling share (PROTOCOL.md sections 6 and 7), with the SDK's own cursor. */
import { encodeCursor, type Position } from '@herald/protocol';
import type { Subscription } from '../subscription.js';

/**
 * `channel` per subscription, and the cursor of every subscription that has a position: the
 * positions the app was actually given, not the last `id:` the hub sent, so a publication
 * received but not yet delivered is asked for again rather than lost.
 */
export function streamQuery(subs: Iterable<Subscription>, cursorName: string): URLSearchParams {
  const query = new URLSearchParams();
  const positions: [string, Position][] = [];
  for (const sub of subs) {
    query.append('channel', sub.channel);
    if (sub.position !== undefined) positions.push([sub.channel, sub.position]);
  }
  if (positions.length > 0) query.set(cursorName, encodeCursor(positions));
  return query;
}
