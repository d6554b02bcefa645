/**
 * Delivers webhook events to the application backend: signed POSTs, at least once while the
 * process lives, with retries and exponential backoff, a bounded queue (drop-oldest into the
 * dead-letter log), a dead-letter log for what cannot be delivered, and metrics.
 *
 * Bound and owner: the dispatcher owns every event from `enqueue` to success or dead letter.
 * Events ready to send plus events waiting for a retry never exceed `queueSize`; past it the
 * oldest ready event (else the oldest waiting one) is dead-lettered with reason `queue_full`.
 * Order is not guaranteed (concurrent sends, retries): events carry `ts` and `id`.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { counter, gauge, histogram } from '../metrics.js';
import { backoffDelay, retryAfterMs } from './backoff.js';
import type { DeadLetterLog, DeadLetterReason } from './dead-letter.js';
import type { OutgoingEvent } from './events.js';
import { DropOldestQueue } from './queue.js';
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
  readonly queueSize: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  readonly deadLetter: DeadLetterLog;
  readonly logger: Logger;
  readonly registry?: Registry;
}

/** Statuses worth retrying: timeouts, throttling and server errors. Any other non-2xx is final. */
const RETRYABLE = (status: number): boolean => status === 408 || status === 425 || status === 429 || status >= 500;

export class WebhookDispatcher {
  readonly #o: WebhookDispatcherOptions;
  readonly #ready: DropOldestQueue<OutgoingEvent>;
  readonly #waiting = new Map<OutgoingEvent, NodeJS.Timeout>();
  readonly #idle: Array<() => void> = [];
  #inflight = 0;
  #closed = false;
  readonly #metrics;

  constructor(options: WebhookDispatcherOptions) {
    this.#o = options;
    this.#ready = new DropOldestQueue(options.queueSize);
    const r = options.registry;
    this.#metrics = {
      events: counter(r, 'herald_webhook_events_total', 'Webhook events created, by type.', ['type']),
      attempts: counter(r, 'herald_webhook_attempts_total', 'Webhook delivery attempts, by outcome.', ['outcome']),
      delivered: counter(r, 'herald_webhook_delivered_total', 'Webhook events the backend accepted (2xx).'),
      dead: counter(r, 'herald_webhook_dead_letters_total', 'Webhook events given up, by reason.', ['reason']),
      latency: histogram(
        r,
        'herald_webhook_delivery_seconds',
        'From event creation to the 2xx answer, retries included.',
      ),
    };
    gauge(r, 'herald_webhook_queue_depth', 'Webhook events ready to send or waiting for a retry.', () => this.depth);
  }

  /** Events ready or waiting for a retry (not those in flight). */
  get depth(): number {
    return this.#ready.length + this.#waiting.size;
  }

  get inflight(): number {
    return this.#inflight;
  }

  enqueue(event: OutgoingEvent): void {
    this.#metrics.events.inc({ type: event.type });
    if (this.#closed) return this.#dead(event, 'shutdown');
    if (this.depth >= this.#o.queueSize) {
      // Full: the oldest ready event makes room, or, when all are waiting to retry, the oldest of those.
      let oldest = this.#ready.shift();
      if (oldest === undefined) {
        const [waiting, timer] = this.#waiting.entries().next().value as [OutgoingEvent, NodeJS.Timeout];
        clearTimeout(timer);
        this.#waiting.delete(waiting);
        oldest = waiting;
      }
      this.#dead(oldest, 'queue_full');
    }
    this.#ready.push(event);
    this.#pump();
  }

  /**
   * Stops taking events, sends what is queued (retries due later are tried now, once) until
   * `graceMs` has passed, then dead-letters the rest with reason `shutdown`.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [event, timer] of this.#waiting) {
      clearTimeout(timer);
      this.#ready.push(event);
    }
    this.#waiting.clear();
    this.#pump();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#whenIdle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const event of this.#ready.drain()) this.#dead(event, 'shutdown');
    await this.#o.deadLetter.flush();
  }

  /** Resolves when nothing is queued, waiting or in flight. */
  #whenIdle(): Promise<void> {
    if (this.depth === 0 && this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#inflight < this.#o.concurrency) {
      const event = this.#ready.shift();
      if (event === undefined) break;
      this.#inflight++;
      void this.#attempt(event).finally(() => {
        this.#inflight--;
        this.#pump();
        if (this.depth === 0 && this.#inflight === 0) for (const resolve of this.#idle.splice(0)) resolve();
      });
    }
  }

  async #attempt(event: OutgoingEvent): Promise<void> {
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
          [SIGNATURE_HEADER]: signWebhook(event.body, this.#o.secrets),
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
      return;
    }
    this.#metrics.attempts.inc({ outcome: status === undefined ? 'network_error' : 'http_error' });
    const details = { ...(status === undefined ? {} : { lastStatus: status }), ...(error ? { lastError: error } : {}) };
    if (status !== undefined && !RETRYABLE(status)) return this.#dead(event, 'rejected', details);
    if (event.attempts >= this.#o.maxAttempts) return this.#dead(event, 'attempts_exhausted', details);
    if (this.#closed) return this.#dead(event, 'shutdown', details);
    const delay = Math.min(
      this.#o.retryMaxMs,
      Math.max(backoffDelay(event.attempts, this.#o.retryBaseMs, this.#o.retryMaxMs), retryAfter ?? 0),
    );
    this.#o.logger.debug({ eventId: event.id, status, error, delay }, 'webhook attempt failed; will retry');
    const timer = setTimeout(() => {
      this.#waiting.delete(event);
      this.#ready.push(event);
      this.#pump();
    }, delay);
    timer.unref();
    this.#waiting.set(event, timer);
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
