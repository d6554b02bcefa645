/**
 * One pusher-js HTTP fallback session (`xhr_streaming` or `xhr_polling`): the pipe of a Pusher
 * connection whose messages leave through whichever receive request is open at the moment.
 *
 * pusher-js speaks SockJS's framing over these requests, one frame a line: `o` opens the
 * session (only in the first receive request: an `o` later means "server lost session" to the
 * client), `a["msg", ...]` carries messages, `h` is a heartbeat, `c[code, "reason"]` closes.
 * A streaming receive stays open and gets frames as they come; a poll gets what is queued (or
 * waits for something, or a heartbeat) and ends, and the client polls again at once.
 *
 * What the session holds for a client that has no receive open is its queue, counted in
 * `bufferedBytes` with what the open request has not flushed: the hub's queue bound (4004)
 * applies to it as to a WebSocket. A session no receive request comes for is ended.
 */
import type { PusherPipe } from './connection.js';
import type { PusherPublication } from './messages.js';

/** Where frames go: a local HTTP response, or one on another node (relay.ts). */
export interface Receiver {
  readonly streaming: boolean;
  /** Writes frame lines (each ending in `\n`). */
  write(text: string): void;
  /** Bytes written and not yet taken by the client. */
  buffered(): number;
  end(): void;
}

/** A held poll answers with a heartbeat after this long, and a stream gets one this often. */
export const HEARTBEAT_MS = 25_000;
/** A session that no receive request comes for in this long is gone (the client left). */
export const SESSION_IDLE_MS = 60_000;
/** How long a client may take to read what it was sent before it counts as a slow consumer. */
const DRAIN_TIMEOUT_MS = 10_000;

export class HttpSession implements PusherPipe {
  /** Messages not yet written, as JSON text. */
  #queue: string[] = [];
  #queuedBytes = 0;
  #receiver: Receiver | undefined;
  #receiverSince = 0;
  /** The close frame, once the hub closed the session: the next receive gets it. */
  #closeFrame: string | undefined;
  /** When the last receive request ended (or the session started). */
  idleSince = Date.now();
  #onGone: () => void;

  constructor(onGone: () => void) {
    this.#onGone = onGone;
  }

  get closed(): boolean {
    return this.#closeFrame !== undefined;
  }

  /** A receive request arrived: it replaces any open one (pusher-js opens a new stream after 256 KiB). */
  attach(receiver: Receiver): void {
    const previous = this.#receiver;
    this.#receiver = receiver;
    this.#receiverSince = Date.now();
    previous?.end();
    if (this.#closeFrame !== undefined) {
      receiver.write(this.#closeFrame);
      this.#detached(receiver, true);
      this.#onGone();
      return;
    }
    this.#flush();
  }

  /** The receive request ended (its client went, or it was answered). */
  detach(receiver: Receiver): void {
    if (this.#receiver === receiver) this.#detached(receiver, false);
  }

  #detached(receiver: Receiver, end: boolean): void {
    this.#receiver = undefined;
    this.idleSince = Date.now();
    if (end) receiver.end();
  }

  /** Heartbeats and the end of held polls; true when the session should be dropped (idle too long). */
  tick(now: number): boolean {
    const receiver = this.#receiver;
    if (receiver === undefined) return now - this.idleSince > SESSION_IDLE_MS;
    if (now - this.#receiverSince >= HEARTBEAT_MS) {
      receiver.write('h\n');
      if (receiver.streaming) this.#receiverSince = now;
      else this.#detached(receiver, true);
    }
    return false;
  }

  // ---- PusherPipe -------------------------------------------------------------------------

  send(json: string): void {
    if (this.#closeFrame !== undefined) return;
    this.#queue.push(json);
    this.#queuedBytes += json.length;
    // Several messages of one turn leave in one frame.
    if (this.#queue.length === 1) queueMicrotask(() => this.#flush());
  }

  sendPublication(publication: PusherPublication): void {
    this.send(publication.json);
  }

  bufferedBytes(): number {
    return this.#queuedBytes + (this.#receiver?.buffered() ?? 0);
  }

  async drained(bound: number): Promise<boolean> {
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (this.bufferedBytes() > bound) {
      if (this.#closeFrame !== undefined || Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return true;
  }

  close(code: number, reason: string): void {
    if (this.#closeFrame !== undefined) return;
    this.#flush();
    this.#closeFrame = `c${JSON.stringify([code, reason])}\n`;
    this.#queue = [];
    this.#queuedBytes = 0;
    const receiver = this.#receiver;
    if (receiver !== undefined) {
      receiver.write(this.#closeFrame);
      this.#detached(receiver, true);
      this.#onGone();
    }
  }

  #flush(): void {
    const receiver = this.#receiver;
    if (receiver === undefined || this.#queue.length === 0) return;
    const frame = `a${JSON.stringify(this.#queue)}\n`;
    this.#queue = [];
    this.#queuedBytes = 0;
    receiver.write(frame);
    if (!receiver.streaming) this.#detached(receiver, true);
  }
}
