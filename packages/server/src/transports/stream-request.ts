/**
 * The query shared by SSE and long-polling (PROTOCOL.md sections 6 and 7), checked whole before
 * any stream starts: 400 for bad channels or cursors, 401 for the token, 403 if any channel is not
 * permitted. A refused request never receives anything.
 */
import type { IncomingMessage } from 'node:http';
import { HeraldError, decodeCursor, isValidChannel, type Position } from '@herald/protocol';
import type { Credentials } from '../core/credentials.js';
import { requestToken } from '../http/credentials.js';
import { authenticate, checkOrigin, type TransportContext } from './context.js';

export interface StreamRequest {
  readonly channels: readonly string[];
  readonly credentials: Credentials;
  /** Present when the request resumes: the position of every channel the cursor knows. */
  readonly resume: ReadonlyMap<string, Position> | undefined;
  readonly joinLeave: boolean;
}

export async function parseStreamRequest(
  ctx: TransportContext,
  req: IncomingMessage,
  url: URL,
  cursorText: string | undefined,
): Promise<StreamRequest> {
  checkOrigin(ctx, req);
  const channels = [...new Set(url.searchParams.getAll('channel'))];
  if (channels.length === 0) throw new HeraldError('bad_channel', 'at least one channel query parameter is required');
  const max = ctx.hub.limits.maxSubscriptionsPerSession;
  if (channels.length > max) throw new HeraldError('bad_channel', `at most ${max} channels per request`);
  for (const channel of channels) {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'a channel name is not valid');
  }
  let resume: Map<string, Position> | undefined;
  if (cursorText !== undefined && cursorText !== '') {
    resume = decodeCursor(cursorText);
    if (resume === undefined) throw new HeraldError('bad_cursor', 'the cursor is not one this hub issued');
  }
  const credentials = await authenticate(ctx, requestToken(req, url, ctx.tokenCookie));
  const refused = channels.find((channel) => !credentials.canSubscribe(channel));
  if (refused !== undefined) throw new HeraldError('forbidden', `not permitted to subscribe to ${refused}`);
  if (!ctx.hub.ready) throw new HeraldError('not_ready', 'the hub is not accepting connections');
  // The per-user cap answers 429 here, before any stream starts (openSession checks it again).
  ctx.hub.admitUser(credentials.userId);
  const joinLeave = url.searchParams.get('joinLeave');
  return { channels, credentials, resume, joinLeave: joinLeave === '1' || joinLeave === 'true' };
}
