/**
 * The one refusal for a channel a client may not follow or read (PROTOCOL.md section 3): 403
 * `forbidden`, with a message that tells the client what would help. Without a token that is a
 * token; with one, a token whose `channels` patterns cover the channel. The channel name is the
 * client's own input; the patterns themselves are never listed.
 *
 * The message ends with the channel name: that is how the SDK tells which subscription of a
 * several-channel SSE or poll request was refused (packages/client/src/transports/sse.ts).
 */
import { HeraldError } from '@herald/protocol';
import type { Credentials } from '../core/credentials.js';

/** What the client asked to do with the channel, as the message words it. */
export type ChannelAction = 'subscribe to' | 'read';

export function channelRefusal(credentials: Credentials, channel: string, action: ChannelAction): HeraldError {
  if (credentials.userId === '') {
    return new HeraldError(
      'forbidden',
      `only the hub's anonymous channels are open without a token; a token is needed to ${action} ${channel}`,
    );
  }
  return new HeraldError('forbidden', `not permitted by the token's "channels" patterns to ${action} ${channel}`);
}

/** Throws `channelRefusal` unless the credentials may subscribe to (and so read) `channel`. */
export function requireChannel(credentials: Credentials, channel: string, action: ChannelAction): void {
  if (!credentials.canSubscribe(channel)) throw channelRefusal(credentials, channel, action);
}
