/**
 * Long-polling (PROTOCOL.md section 7). There is no server session between requests: each poll
 * is a short-lived, invisible subscriber that resumes from the request's cursor, answers as soon
 * as anything follows it, and is gone. Any node sharing the broker can answer any poll.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CloseCode,
  HeraldError,
  closeInfo,
  encodeCursor,
  type ClientInfo,
  type DisconnectInfo,
  type Position,
} from '@herald/protocol';
import type { Delivery } from '../core/delivery.js';
import type { SessionTransport, Subscription } from '../core/session.js';
import { sendJson, sendThrown } from '../http/respond.js';
import { corsHeaders, disconnectJson, type TransportContext } from './context.js';
import { parseStreamRequest } from './stream-request.js';
import { channelsJson, subscribeAll } from './subscribe-all.js';

const DEFAULT_TIMEOUT_S = 25;
const MAX_TIMEOUT_S = 55;

/**
 * Collects one answer's publications. The answer goes out one event-loop turn after the first
 * (so a burst leaves in one answer), or at once when it holds the queue bound: a poll never holds
 * more than that for its client, and what did not fit comes with the next poll, from the cursor.
 */
class PollWaiter implements SessionTransport {
  readonly kind = 'poll' as const;
  readonly publications: string[] = [];
  /** Why the hub ended the poll before it answered (a disconnect, a revocation, a shutdown). */
  goodbye: DisconnectInfo | undefined;
  /** Called when the answer should go out (it goes once). */
  onReady: (() => void) | undefined;
  readonly #maxBytes: number;
  #bytes = 0;
  #scheduled = false;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Never more than the bound: the answer goes out before that (see writePublication). */
  bufferedBytes(): number {
    return 0;
  }

  writePublication(delivery: Delivery): void {
    const json = delivery.record.json;
    this.publications.push(json);
    this.#bytes += json.length;
    if (this.#bytes >= this.#maxBytes) {
      this.onReady?.();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.onReady?.());
    }
  }

  writeJoinLeave(_kind: 'join' | 'leave', _channel: string, _client: ClientInfo): void {}

  /** The channel's position was lost mid-poll: answer now; the next poll reports recovered: false. */
  writeUnsubscribed(): void {
    this.onReady?.();
  }

  end(info: DisconnectInfo): void {
    this.goodbye ??= info;
    this.onReady?.();
  }
}

export class PollTransport {
  readonly #ctx: TransportContext;

  constructor(ctx: TransportContext) {
    this.#ctx = ctx;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const ctx = this.#ctx;
    const cors = corsHeaders(req, ctx.origins);
    let request;
    let timeoutSeconds: number;
    try {
      timeoutSeconds = parseTimeout(url.searchParams.get('timeout'));
      request = await parseStreamRequest(ctx, req, url, url.searchParams.get('cursor') ?? undefined, 'poll');
    } catch (error) {
      sendThrown(res, error, cors);
      return;
    }
    const waiter = new PollWaiter(ctx.hub.limits.maxQueueBytes);
    const session = ctx.hub.openSession(waiter, request.credentials);
    let outcomes;
    try {
      outcomes = await subscribeAll(ctx.hub, session, request, false);
    } catch (error) {
      ctx.hub.endSession(session, closeInfo(CloseCode.Normal, 'refused'));
      sendThrown(res, error, cors);
      return;
    }
    const recovered = new Map(outcomes.map((o) => [o.channel, o.recovered]));

    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      req.socket.off('close', onClose);
      const positions = new Map<string, Position>();
      for (const sub of session.subscriptions.values()) positions.set(sub.channel, position(sub));
      // Read before the answer's own end of the session, which would look like a goodbye.
      const goodbye = waiter.goodbye;
      ctx.hub.endSession(session, closeInfo(CloseCode.Normal, 'answered'));
      const channels = channelsJson(
        request.channels.map((channel) => {
          const r = recovered.get(channel);
          const p = positions.get(channel) ??
            outcomes.find((o) => o.channel === channel)?.position ?? { offset: 0, epoch: '' };
          return r === undefined ? { channel, position: p } : { channel, position: p, recovered: r };
        }),
      );
      const cursor = encodeCursor(positions);
      sendJson(
        res,
        200,
        `{"cursor":${JSON.stringify(cursor)},"publications":[${waiter.publications.join(',')}],"channels":${channels}${
          goodbye === undefined ? '' : `,"disconnect":${disconnectJson(goodbye)}`
        }}`,
        cors,
      );
    };
    const onClose = (): void => {
      answered = true;
      clearTimeout(timer);
      ctx.hub.endSession(session, closeInfo(CloseCode.Normal, 'client closed'));
    };
    const timer = setTimeout(answer, timeoutSeconds * 1000);
    req.socket.once('close', onClose);
    waiter.onReady = answer;
    // Without a pacer: the first page of any replay, and the channel goes live only when that was
    // all; a longer replay continues with the next poll, from the answer's cursor.
    for (const outcome of outcomes) void ctx.hub.activate(outcome);
    // Answer at once with news: publications, a lost position (the client must reload now, not
    // after the timeout: a gap is never silent), or a replay that continues with the next poll.
    const news = outcomes.some((o) => o.recovered === false || o.more);
    if (waiter.publications.length > 0 || session.closed || news) answer();
  }
}

function position(sub: Subscription): Position {
  return { offset: sub.offset, epoch: sub.epoch };
}

function parseTimeout(value: string | null): number {
  if (value === null || value === '') return DEFAULT_TIMEOUT_S;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0)
    throw new HeraldError('bad_request', 'timeout must be a number of seconds');
  return Math.min(seconds, MAX_TIMEOUT_S);
}
