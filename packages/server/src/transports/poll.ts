/**
 * Long-polling (PROTOCOL.md section 7). There is no server session between requests: each poll
 * is a short-lived, invisible subscriber that resumes from the request's cursor, answers as soon
 * as anything follows it, and is gone. Any node sharing the broker can answer any poll.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CloseCode,
  HeraldError,
  encodeCursor,
  type ClientInfo,
  type DisconnectInfo,
  type Position,
} from '@herald/protocol';
import type { Delivery } from '../core/delivery.js';
import type { SessionTransport, Subscription } from '../core/session.js';
import { sendJson, sendThrown } from '../http/respond.js';
import { corsHeaders, type TransportContext } from './context.js';
import { parseStreamRequest } from './stream-request.js';
import { channelsJson, subscribeAll } from './subscribe-all.js';

const DEFAULT_TIMEOUT_S = 25;
const MAX_TIMEOUT_S = 55;

class PollWaiter implements SessionTransport {
  readonly kind = 'poll' as const;
  readonly publications: string[] = [];
  /** Called once, when the answer should go out. */
  onReady: (() => void) | undefined;
  #scheduled = false;

  bufferedBytes(): number {
    return 0;
  }

  writePublication(delivery: Delivery): void {
    this.publications.push(delivery.record.json);
    // Wait one turn of the event loop so a burst goes out in one answer.
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.onReady?.());
    }
  }

  writeJoinLeave(_kind: 'join' | 'leave', _channel: string, _client: ClientInfo): void {}

  /** The channel's position was lost mid-poll: answer now; the next poll reports recovered: false. */
  writeUnsubscribed(): void {
    this.onReady?.();
  }

  end(_info: DisconnectInfo): void {
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
      request = await parseStreamRequest(ctx, req, url, url.searchParams.get('cursor') ?? undefined);
    } catch (error) {
      sendThrown(res, error, cors);
      return;
    }
    const waiter = new PollWaiter();
    const session = ctx.hub.openSession(waiter, request.credentials);
    let outcomes;
    try {
      outcomes = await subscribeAll(ctx.hub, session, request, false);
    } catch (error) {
      ctx.hub.endSession(session, { code: CloseCode.Normal, reason: 'refused', reconnect: false });
      sendThrown(res, error, cors);
      return;
    }
    const recovered = new Map(outcomes.map((o) => [o.channel, o.recovered]));
    for (const outcome of outcomes) for (const record of outcome.publications) waiter.publications.push(record.json);

    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      req.socket.off('close', onClose);
      const positions = new Map<string, Position>();
      for (const sub of session.subscriptions.values()) positions.set(sub.channel, position(sub));
      ctx.hub.endSession(session, { code: CloseCode.Normal, reason: 'answered', reconnect: false });
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
        `{"cursor":${JSON.stringify(cursor)},"publications":[${waiter.publications.join(',')}],"channels":${channels}}`,
        cors,
      );
    };
    const onClose = (): void => {
      answered = true;
      clearTimeout(timer);
      ctx.hub.endSession(session, { code: CloseCode.Normal, reason: 'client closed', reconnect: false });
    };
    const timer = setTimeout(answer, timeoutSeconds * 1000);
    req.socket.once('close', onClose);
    waiter.onReady = answer;
    for (const outcome of outcomes) ctx.hub.activate(outcome.subscription);
    // A lost position is news too: the client must reload now, not after the timeout (a gap is never silent).
    const lost = outcomes.some((o) => o.recovered === false);
    if (waiter.publications.length > 0 || session.closed || lost) answer();
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
