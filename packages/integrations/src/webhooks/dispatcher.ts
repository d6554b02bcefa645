/**
 * Delivers webhook events to the application backend: signed POSTs, at least once, with retries
 * and exponential backoff, a bounded outbox (drop-oldest into the dead-letter log), a dead-letter
 * log for what cannot be delivered, and metrics.
 *
 * Bound and owner: the dispatcher owns every event from `enqueue` to success or dead letter; the
 * outbox keeps it meanwhile (outbox.ts). Events ready to send plus events waiting for a retry never
 * exceed `queueSize`; past it the oldest ready event (else the oldest waiting one) is dead-lettered
 * with reason `queue_full`. With the in-memory outbox (the default) "at least once" holds while the
 * process lives; with a Redis or NATS outbox an accepted event survives the node that created it:
 * another node, or this one restarted, sends it. Order is not guaranteed (concurrent sends,
 * retries): events carry `ts` and `id`, and a redelivery carries the same `id`.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { pause } from '../bridges/ingest.js';
import { counter, gauge, histogram } from '../metrics.js';
import { backoffDelay, retryAfterMs } from './backoff.js';
import type { DeadLetterLog, DeadLetterReason } from './dead-letter.js';
import type { OutgoingEvent } from './events.js';
import { MemoryOutbox } from './memory-outbox.js';
import type { Claim, Outbox } from './outbox.js';
import { SIGNATURE_HEADER, signWebhook } from './signature.js';

export interface WebhookDispatcherOptions {
  readonly url: string;
  /** Signing secrets; every one signs (rotation: add the new one, then remove the old one). */
  readonly secrets: readonly string[];
  readonly timeoutMs: number;
  /** Attempts per event, the first included. */
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Capacity of the default in-process outbox (a given `outbox` has its own). */
  readonly queueSize: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  readonly deadLetter: DeadLetterLog;
  readonly logger: Logger;
  readonly registry?: Registry;
  /**
   * Where events wait (outbox.ts). Default: in this process, `queueSize` events; then the
   * dispatcher runs from construction. Any other outbox needs `start()`.
   */
  readonly outbox?: Outbox;
  /**
   * The signature headers of a body, when the receiver expects another format than Herald's
   * (`Herald-Signature` over `secrets`): the Pusher protocol's webhooks sign with
   * `X-Pusher-Key` and `X-Pusher-Signature` (packages/transport-pusher).
   */
  readonly signatureHeaders?: (body: string) => Readonly<Record<string, string>>;
}

/** Statuses worth retrying: timeouts, throttling and server errors. Any other non-2xx is final. */
const RETRYABLE = (status: number): boolean => status === 408 || status === 425 || status === 429 || status >= 500;

export class WebhookDispatcher {
  readonly outbox: Outbox;
  readonly #o: WebhookDispatcherOptions;
  readonly #stop = new AbortController();
  /** How long a claim waits when nothing is due; also how late a shared retry may start. */
  readonly #pollMs: number;
  readonly #slotWaiters: Array<() => void> = [];
  #inflight = 0;
  #closed = false;
  #loop: Promise<void> | undefined;
  #lastDepth = 0;
  readonly #metrics;

  constructor(options: WebhookDispatcherOptions) {
    this.#o = options;
    this.outbox = options.outbox ?? new MemoryOutbox(options.queueSize);
    this.#pollMs = Math.min(1000, Math.max(50, options.retryBaseMs / 2));
    const r = options.registry;
    this.#metrics = {
      events: counter(r, 'herald_webhook_events_total', 'Webhook events created, by type.', ['type']),
      attempts: counter(r, 'herald_webhook_attempts_total', 'Webhook delivery attempts, by outcome.', ['outcome']),
      delivered: counter(r, 'herald_webhook_delivered_total', 'Webhook events the backend accepted (2xx).'),
      dead: counter(r, 'herald_webhook_dead_letters_total', 'Webhook events given up, by reason.', ['reason']),
      outboxErrors: counter(
        r,
        'herald_webhook_outbox_errors_total',
        'Webhook outbox calls that failed (Redis or NATS unreachable).',
      ),
      latency: histogram(
        r,
        'herald_webhook_delivery_seconds',
        'From event creation to the 2xx answer, retries included.',
      ),
    };
    gauge(r, 'herald_webhook_queue_depth', 'Webhook events ready to send or waiting for a retry.', () =>
      this.queueDepth().catch(() => this.#lastDepth),
    );
    if (options.outbox === undefined) this.#loop = this.#run();
  }

  /** Connects the outbox and starts sending. A no-op for the default in-process outbox. */
  async start(): Promise<this> {
    if (this.#loop !== undefined) return this;
    await this.outbox.start();
    this.#loop = this.#run();
    return this;
  }

  /**
   * Events ready or waiting for a retry (not those in flight), read now. A shared outbox answers
   * for every node (NATS counts events in flight too).
   */
  async queueDepth(): Promise<number> {
    this.#lastDepth = await this.outbox.size();
    return this.#lastDepth;
  }

  /** `queueDepth` without waiting: exact for the in-process outbox, the last value read otherwise. */
  get depth(): number {
    return this.outbox.durable ? this.#lastDepth : (this.outbox.size() as number);
  }

  get inflight(): number {
    return this.#inflight;
  }

  /**
   * Hands the event to the outbox. Resolves once it is kept (stored on Redis or NATS for a shared
   * outbox); never rejects: an event that cannot be kept is dead-lettered (`outbox_unavailable`).
   */
  async enqueue(event: OutgoingEvent): Promise<void> {
    this.#metrics.events.inc({ type: event.type });
    if (this.#closed) return this.#dead(event, 'shutdown');
    let dropped: OutgoingEvent[];
    try {
      dropped = await this.outbox.append(event);
    } catch (error) {
      this.#metrics.outboxErrors.inc();
      return this.#dead(event, 'outbox_unavailable', { lastError: String(error) });
    }
    for (const oldest of dropped) this.#dead(oldest, 'queue_full');
  }

  /**
   * Stops taking events. In-process outbox: sends what is queued (retries due later are tried now,
   * once) until `graceMs` has passed, then dead-letters the rest with reason `shutdown`. Shared
   * outbox: stops claiming (the claim under way ends, and what it brings is sent), lets the
   * requests in flight finish within `graceMs` (a failure goes back to the outbox) and leaves
   * everything else to the other nodes, or to this one restarted.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    if (this.outbox.durable) {
      this.#stop.abort();
      await this.#loop;
      await Promise.race([this.#until(() => this.#inflight === 0), grace]);
    } else {
      this.outbox.expedite();
      await Promise.race([this.#until(() => this.#inflight === 0 && this.outbox.size() === 0), grace]);
      this.#stop.abort();
      await this.#loop;
    }
    clearTimeout(timer);
    for (const event of await this.outbox.close().catch(() => [])) this.#dead(event, 'shutdown');
    await this.#o.deadLetter.flush();
  }

  /** Resolves once `done` holds, checked whenever an attempt ends. */
  async #until(done: () => boolean): Promise<void> {
    // After the current tick: a claim just taken from the outbox has started its attempt by then.
    await new Promise((resolve) => setImmediate(resolve));
    while (!done()) await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
  }

  #slotFreed(): void {
    for (const resolve of this.#slotWaiters.splice(0)) setImmediate(resolve);
  }

  /** Claims as many events as there are free request slots, sends each, until closed. */
  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    let failures = 0;
    while (!signal.aborted) {
      const free = this.#o.concurrency - this.#inflight;
      if (free <= 0) {
        await Promise.race([new Promise<void>((resolve) => this.#slotWaiters.push(resolve)), aborted]);
        continue;
      }
      try {
        // A claim under way when the dispatcher closes still delivers what it brings: releasing it
        // would count as an attempt on NATS (the delivery count), and it ends within about a second.
        for await (const claim of this.outbox.claim(free, this.#pollMs, signal)) this.#send(claim);
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        this.#metrics.outboxErrors.inc();
        this.#o.logger.warn({ err: error, outbox: this.outbox.name, failures }, 'webhook outbox unavailable');
        await pause(backoffDelay(failures, 200, 10_000), signal);
      }
    }
  }

  #send(claim: Claim): void {
    this.#inflight++;
    void this.#attempt(claim)
      .catch((error: unknown) => {
        // The outbox did not take the outcome: the event stays claimed and is claimed again later.
        this.#metrics.outboxErrors.inc();
        this.#o.logger.warn({ err: error, eventId: claim.event.id }, 'webhook outbox did not record an outcome');
      })
      .finally(() => {
        this.#inflight--;
        this.#slotFreed();
      });
  }

  async #attempt(claim: Claim): Promise<void> {
    const { event } = claim;
    if (event.attempts >= this.#o.maxAttempts) {
      // Its last attempt was cut short by a node that stopped: no attempt is left.
      const lastError = 'the node making the last attempt stopped before the answer';
      return this.#settleDead(claim, 'attempts_exhausted', { lastError });
    }
    event.attempts++;
    let status: number | undefined;
    let retryAfter: number | undefined;
    let error: string | undefined;
    try {
      const response = await fetch(this.#o.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#o.timeoutMs),
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'Herald-Webhooks/0.1',
          'Herald-Event-Id': event.id,
          'Herald-Event-Type': event.type,
          'Herald-Attempt': String(event.attempts),
          ...(this.#o.signatureHeaders?.(event.body) ?? {
            [SIGNATURE_HEADER]: signWebhook(event.body, this.#o.secrets),
          }),
        },
        body: event.body,
      });
      status = response.status;
      retryAfter = retryAfterMs(response.headers.get('retry-after'));
      await response.body?.cancel().catch(() => undefined);
    } catch (e) {
      error = (e as Error).name === 'TimeoutError' ? `timed out after ${this.#o.timeoutMs} ms` : String(e);
    }
    if (status !== undefined && status >= 200 && status < 300) {
      this.#metrics.attempts.inc({ outcome: 'success' });
      this.#metrics.delivered.inc();
      this.#metrics.latency.observe((Date.now() - event.createdAt) / 1000);
      return claim.ack();
    }
    this.#metrics.attempts.inc({ outcome: status === undefined ? 'network_error' : 'http_error' });
    const details = { ...(status === undefined ? {} : { lastStatus: status }), ...(error ? { lastError: error } : {}) };
    if (status !== undefined && !RETRYABLE(status)) return this.#settleDead(claim, 'rejected', details);
    if (event.attempts >= this.#o.maxAttempts) return this.#settleDead(claim, 'attempts_exhausted', details);
    if (this.#closed && !this.outbox.durable) return this.#settleDead(claim, 'shutdown', details);
    const delay = Math.min(
      this.#o.retryMaxMs,
      Math.max(backoffDelay(event.attempts, this.#o.retryBaseMs, this.#o.retryMaxMs), retryAfter ?? 0),
    );
    this.#o.logger.debug({ eventId: event.id, status, error, delay }, 'webhook attempt failed; will retry');
    return claim.retry(delay);
  }

  /** Dead-letters, and only then lets the event leave the outbox: a crash between them repeats, never loses. */
  async #settleDead(
    claim: Claim,
    reason: DeadLetterReason,
    details: { lastStatus?: number; lastError?: string },
  ): Promise<void> {
    this.#dead(claim.event, reason, details);
    await this.#o.deadLetter.flush();
    await claim.ack();
  }

  #dead(
    event: OutgoingEvent,
    reason: DeadLetterReason,
    details: { lastStatus?: number; lastError?: string } = {},
  ): void {
    this.#metrics.dead.inc({ reason });
    this.#o.deadLetter.write({ event, reason, ...details });
  }
}
