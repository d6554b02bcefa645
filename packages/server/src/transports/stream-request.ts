/**
 * The query shared by SSE and long-polling (PROTOCOL.md sections 6 and 7), checked whole before
 * any stream starts: 400 for bad channels or cursors, 401 for the token, 403 if any channel is not
 * permitted. A refused request never receives anything.
 */
import type { IncomingMessage } from 'node:http';
import { HeraldError, decodeCursor, isValidChannel, type Position } from '@herald/protocol';
import { requireChannel } from '../auth/channel-access.js';
import type { Credentials } from '../core/credentials.js';
import { requestToken } from '../http/credentials.js';
import { subscribeGrant, type SubscribeGrant } from '../hooks/decisions.js';
import { authenticate, checkOrigin, hookClientOf, type TransportContext } from './context.js';

export interface StreamRequest {
  readonly channels: readonly string[];
  readonly credentials: Credentials;
  /** Present when the request resumes: the position of every channel the cursor knows. */
  readonly resume: ReadonlyMap<string, Position> | undefined;
  readonly joinLeave: boolean;
  /** Channels outside the credentials' patterns that the subscribe hook allowed. */
  readonly grants: ReadonlyMap<string, SubscribeGrant>;
}

const NO_CHANNEL = 'at least one channel query parameter is required';

export async function parseStreamRequest(
  ctx: TransportContext,
  req: IncomingMessage,
  url: URL,
  cursorText: string | undefined,
  transport: 'sse' | 'poll',
): Promise<StreamRequest> {
  checkOrigin(ctx, req);
  const asked = [...new Set(url.searchParams.getAll('channel'))];
  const token = requestToken(req, url, ctx.tokenCookie);
  // Without a channel only a token's `subs` can name one: checked once the token is.
  if (asked.length === 0 && token === undefined) throw new HeraldError('bad_channel', NO_CHANNEL);
  const max = ctx.hub.limits.maxSubscriptionsPerSession;
  if (asked.length > max) throw new HeraldError('bad_channel', `at most ${max} channels per request`);
  for (const channel of asked) {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'a channel name is not valid');
  }
  let resume: Map<string, Position> | undefined;
  if (cursorText !== undefined && cursorText !== '') {
    resume = decodeCursor(cursorText);
    if (resume === undefined) throw new HeraldError('bad_cursor', 'the cursor is not one this hub issued');
  }
  const client = hookClientOf(ctx, req, transport);
  const credentials = await authenticate(ctx, token, client);
  // Channels outside the patterns go to the subscribe hook (when there is one), all before any stream starts.
  const grants = new Map<string, SubscribeGrant>();
  await Promise.all(
    asked.map(async (channel) => {
      const grant = subscribeGrant(ctx.hooks, credentials, channel, undefined);
      if (grant !== undefined) grants.set(channel, await grant);
    }),
  );
  for (const channel of asked) if (!grants.has(channel)) requireChannel(credentials, channel, 'subscribe to');
  // The token's `subs` join the asked channels (docs/protocol-extensions.md, server-side subscriptions).
  const claimed = (credentials.subs ?? []).filter((channel) => !asked.includes(channel));
  const channels = [...asked, ...claimed.slice(0, Math.max(0, max - asked.length))];
  if (channels.length === 0) throw new HeraldError('bad_channel', NO_CHANNEL);
  if (!ctx.hub.ready) throw new HeraldError('not_ready', 'the hub is not accepting connections');
  // The per-user cap answers 429 here, before any stream starts (openSession checks it again).
  await ctx.hub.admitUserEverywhere(credentials.userId);
  const joinLeave = url.searchParams.get('joinLeave');
  return { channels, credentials, resume, joinLeave: joinLeave === '1' || joinLeave === 'true', grants };
}
