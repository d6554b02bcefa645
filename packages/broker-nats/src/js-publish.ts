/**
 * JetStream publishes as plain NATS requests on one reply subscription. A JetStream publish is a
 * message to a stream's subject with a reply subject; the server answers with a PubAck
 * (`{"stream","seq","duplicate"?}`) or an API error (`{"error":{"code","err_code","description"}}`).
 * nats.js's `js.publish` does exactly that, but with a promise, a timer and three stack-capturing
 * Error objects per publish, which measured as most of a node's CPU at a few thousand publishes
 * per second. Here every publish is one entry in a map, answered by callback; one timer ends the
 * ones that waited too long.
 *
 * Failure: an unanswered publish fails after `timeoutMs`, and `failAll` fails every outstanding
 * one at once (the broker calls it when the connection drops). Either way the outcome is unknown:
 * the server may have stored the message. Callers rely on the expected-sequence check and the
 * idempotency key (`Nats-Msg-Id`) to make a retry safe, as with nats.js.
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';

export interface JsAck {
  readonly seq: number;
  readonly duplicate: boolean;
}

/** A JetStream API error, or a transport failure (`code` undefined: timeout, disconnect). */
export class JsPublishError extends Error {
  /** JetStream's `err_code` (10071: wrong last sequence), when the server answered with one. */
  readonly errCode: number | undefined;
  /** Whether the server may have stored the message (no answer came). */
  readonly unknownOutcome: boolean;
  constructor(message: string, errCode: number | undefined, unknownOutcome: boolean) {
    super(message);
    this.name = 'JsPublishError';
    this.errCode = errCode;
    this.unknownOutcome = unknownOutcome;
  }
}

export type JsPublishCallback = (error: JsPublishError | undefined, ack: JsAck | undefined) => void;

interface Outstanding {
  readonly callback: JsPublishCallback;
  readonly deadline: number;
}

const SWEEP_MS = 100;

export class JsPublisher {
  readonly #timeoutMs: number;
  /** Insertion order is deadline order: every entry gets the same timeout. */
  readonly #outstanding = new Map<string, Outstanding>();
  #nc: NatsConnection | undefined;
  #inbox = '';
  #subscription: Subscription | undefined;
  #next = 0;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Subscribes the reply subject on `nc`; nats.js keeps it across reconnects. */
  start(nc: NatsConnection): void {
    if (this.#nc === nc) return;
    this.stop(new JsPublishError('nats connection replaced', undefined, true));
    this.#nc = nc;
    this.#inbox = createInbox();
    this.#subscription = nc.subscribe(`${this.#inbox}.*`, { callback: (_error, msg) => this.#onReply(msg) });
  }

  stop(error: JsPublishError): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    this.#nc = undefined;
    this.failAll(error);
  }

  get outstanding(): number {
    return this.#outstanding.size;
  }

  /** Publishes; `callback` runs exactly once, with the ack or an error. Throws when it cannot send at all. */
  publish(subject: string, payload: string, headers: MsgHdrs, callback: JsPublishCallback): void {
    const nc = this.#nc;
    if (nc === undefined) throw new JsPublishError('nats publisher is not started', undefined, false);
    const token = (this.#next = (this.#next + 1) % Number.MAX_SAFE_INTEGER).toString(36);
    // Sent before it is registered: a publish that throws (too large, closed) leaves nothing behind.
    nc.publish(subject, payload, { headers, reply: `${this.#inbox}.${token}` });
    this.#outstanding.set(token, { callback, deadline: Date.now() + this.#timeoutMs });
    this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_MS).unref();
  }

  /** Fails every outstanding publish (connection lost: their answers cannot come). */
  failAll(error: JsPublishError): void {
    const all = [...this.#outstanding.values()];
    this.#outstanding.clear();
    this.#stopSweeping();
    for (const entry of all) entry.callback(error, undefined);
  }

  #onReply(msg: Msg): void {
    const subject = msg.subject;
    const token = subject.slice(subject.lastIndexOf('.') + 1);
    const entry = this.#outstanding.get(token);
    if (entry === undefined) return; // answered after its timeout: the caller was told already
    this.#outstanding.delete(token);
    if (this.#outstanding.size === 0) this.#stopSweeping();
    let error: JsPublishError | undefined;
    let ack: JsAck | undefined;
    if (msg.headers?.hasError === true) {
      // A status message (503: no stream listens on the subject): nothing was stored.
      error = new JsPublishError(`nats answered ${msg.headers.code} ${msg.headers.description}`, undefined, false);
    } else {
      try {
        const body = JSON.parse(msg.string()) as {
          seq?: number;
          duplicate?: boolean;
          error?: { err_code?: number; description?: string };
        };
        if (body.error !== undefined) {
          error = new JsPublishError(body.error.description ?? 'jetstream error', body.error.err_code, false);
        } else if (typeof body.seq === 'number' && body.seq > 0) {
          ack = { seq: body.seq, duplicate: body.duplicate === true };
        } else {
          error = new JsPublishError('unreadable jetstream ack', undefined, true);
        }
      } catch {
        error = new JsPublishError('unreadable jetstream ack', undefined, true);
      }
    }
    entry.callback(error, ack);
  }

  #sweep(): void {
    const now = Date.now();
    const expired: Outstanding[] = [];
    for (const [token, entry] of this.#outstanding) {
      if (entry.deadline > now) break;
      this.#outstanding.delete(token);
      expired.push(entry);
    }
    if (this.#outstanding.size === 0) this.#stopSweeping();
    const error = new JsPublishError('nats did not acknowledge the publication in time', undefined, true);
    for (const entry of expired) entry.callback(error, undefined);
  }

  #stopSweeping(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}
