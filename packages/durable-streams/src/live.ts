/**
 * Live reads (PROTOCOL.md 5.7 long-poll, 5.8 SSE) as hub sessions, like Herald's own /poll and
 * /sse: after a catch-up read to the tail, the request subscribes to the stream's channel from the
 * exact Herald position that read reached (`since`), so nothing written in between is missed or
 * doubled, and live publications come through the hub's fan-out on any node. The hub owns the
 * session's rules (order checks, the slow-consumer bound, drain); this module only translates.
 */
import type { ServerResponse } from 'node:http';
import {
  CloseCode,
  UNSUBSCRIBE_CODES,
  closeInfo,
  type DisconnectInfo,
  type Position,
  type UnsubscribeCode,
} from '@herald/protocol';
import {
  defineEncoder,
  drainedBelow,
  type Credentials,
  type Delivery,
  type Hub,
  type Pacer,
  type Session,
  type SessionTransport,
} from '@herald/server';
import { gone } from './errors.js';
import { parsePublication, type DsPublication } from './publication.js';

/** How long a replay waits for an SSE reader that stopped reading (then it is a slow consumer). */
const DRAIN_TIMEOUT_MS = 10_000;

/** Each publication parsed once per node, whatever number of live readers it goes to. */
const PARSED = defineEncoder(parsePublication);

/**
 * The write half of a live read: publications arrive here from the hub and leave in batches, one
 * per turn of the event loop, so a burst becomes one long-poll answer or one run of SSE events.
 */
class TailTransport implements SessionTransport, Pacer {
  readonly kind: 'poll' | 'sse';
  readonly #res: ServerResponse | undefined;
  readonly #onBatch: (pubs: DsPublication[]) => void;
  readonly #onEnd: (info: DisconnectInfo) => void;
  /** The hub's queue bound: what a reader may leave unread before a replay waits. */
  readonly #maxUnread: number;
  #pending: DsPublication[] = [];
  #scheduled = false;

  constructor(
    kind: 'poll' | 'sse',
    maxUnread: number,
    res: ServerResponse | undefined,
    onBatch: (pubs: DsPublication[]) => void,
    onEnd: (info: DisconnectInfo) => void,
  ) {
    this.kind = kind;
    this.#maxUnread = maxUnread;
    this.#res = res;
    this.#onBatch = onBatch;
    this.#onEnd = onEnd;
  }

  bufferedBytes(): number {
    return this.#res?.writableLength ?? 0;
  }

  writePublication(delivery: Delivery): void {
    this.take(delivery.encoded(PARSED));
  }

  take(pub: DsPublication): void {
    this.#pending.push(pub);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const batch = this.#pending;
      this.#pending = [];
      if (batch.length > 0) this.#onBatch(batch);
    });
  }

  writeJoinLeave(): void {}

  /** The hub lost the channel's position (a broker gap): the reader reconnects from its offset. */
  writeUnsubscribed(_channel: string, code: number, reason: string): void {
    this.#onEnd({ code, reason, reconnect: UNSUBSCRIBE_CODES[code as UnsubscribeCode]?.resubscribe ?? true });
  }

  /** Stored publications are written as the reader takes them (the queue bound). */
  drained(): Promise<boolean> {
    const res = this.#res;
    if (res === undefined) return Promise.resolve(true);
    return drainedBelow(res.socket ?? res, () => this.bufferedBytes(), this.#maxUnread, DRAIN_TIMEOUT_MS);
  }

  end(info: DisconnectInfo): void {
    this.#onEnd(info);
  }
}

export interface Tail {
  readonly session: Session;
  close(): void;
}

/**
 * Opens a session that follows `channel` from `since` (publications after it arrive in `onBatch`,
 * in order, the ones already stored first). `onEnd` hears the hub ending it (drain, slow reader,
 * lost position); `close` ends it from this side. A position the broker cannot serve is a 410.
 */
export async function followChannel(
  hub: Hub,
  kind: 'poll' | 'sse',
  res: ServerResponse | undefined,
  credentials: Credentials,
  channel: string,
  since: Position,
  onBatch: (pubs: DsPublication[]) => void,
  onEnd: (info: DisconnectInfo) => void,
): Promise<Tail> {
  const transport = new TailTransport(kind, hub.limits.maxQueueBytes, res, onBatch, onEnd);
  const session = hub.openSession(transport, credentials);
  const close = (): void => hub.endSession(session, closeInfo(CloseCode.Normal, 'durable streams read done'));
  let outcome;
  try {
    outcome = await hub.subscribe(session, channel, { since, present: false });
  } catch (error) {
    close();
    throw error;
  }
  if (outcome.recovered === false) {
    close();
    throw gone('the hub no longer keeps the stream from that offset (history retention)');
  }
  // The stored ones first (paced by an SSE reader; a long-poll takes the first page and answers),
  // then the live ones.
  await hub.activate(outcome, res === undefined ? undefined : transport);
  return { session, close };
}

/** Credentials for a live read's session: the one channel, nothing else; counted against `userId`. */
export function readerCredentials(userId: string, channel: string): Credentials {
  return Object.freeze({ userId, canSubscribe: (c: string) => c === channel, canPublish: () => false });
}

/**
 * Runs `onClose` once the response closes: answered, or the client went away. (A listener on the
 * socket would pile up on a keep-alive connection, one per request.)
 */
export function onClientGone(res: ServerResponse, onClose: () => void): void {
  res.once('close', onClose);
}
