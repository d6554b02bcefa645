/** Subscribes one session to every channel of an SSE or poll request, all or nothing. */
import type { Position } from '@herald/protocol';
import type { Hub, SubscribeOutcome } from '../core/hub.js';
import type { Session } from '../core/session.js';
import type { StreamRequest } from './stream-request.js';

export interface ChannelOutcome extends SubscribeOutcome {
  readonly channel: string;
}

export async function subscribeAll(
  hub: Hub,
  session: Session,
  request: StreamRequest,
  present: boolean,
): Promise<ChannelOutcome[]> {
  const outcomes = await Promise.all(
    request.channels.map(async (channel): Promise<ChannelOutcome> => {
      const since: Position | undefined = request.resume?.get(channel);
      const outcome = await hub.subscribe(session, channel, {
        ...(since === undefined ? {} : { since }),
        joinLeave: request.joinLeave,
        present,
        ...request.grants.get(channel),
      });
      // Resuming, a channel the cursor does not know has no position to recover from.
      if (request.resume !== undefined && since === undefined) return { ...outcome, channel, recovered: false };
      return { ...outcome, channel };
    }),
  );
  return outcomes;
}

/** `{"<channel>": {"offset", "epoch", "recovered"?}}` as in `herald.connected` and poll answers. */
export function channelsJson(entries: Iterable<{ channel: string; position: Position; recovered?: boolean }>): string {
  const parts: string[] = [];
  for (const { channel, position, recovered } of entries) {
    const r = recovered === undefined ? '' : `,"recovered":${recovered}`;
    parts.push(`"${channel}":{"offset":${position.offset},"epoch":${JSON.stringify(position.epoch)}${r}}`);
  }
  return `{${parts.join(',')}}`;
}
