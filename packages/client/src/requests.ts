/**
 * Requests that outlive connections: `publish`, `presence` and `history` wait for a connection,
 * and after a transient failure are sent again (same params, so a publish keeps its idempotency
 * key and is applied once) until their deadline. Every pending request is owned here and settled
 * exactly once: answered, failed, timed out, aborted or rejected on close.
 */
import { HeraldClientError } from './errors.js';
import { backoffDelay, type BackoffSettings } from './reconnect.js';
import type { RequestMethod, Transport } from './transports/transport.js';

export interface RequestOptions {
  /** Deadline including retries; default `requestTimeoutMs`. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

interface Pending {
  readonly method: RequestMethod;
  readonly params: Record<string, unknown>;
  readonly retry: boolean;
  readonly settle: (error: unknown, value?: unknown) => void;
  sent: boolean;
  attempt: number;
}

type RequestSettings = BackoffSettings & { readonly requestTimeoutMs: number };

/** Nothing was decided, or the hub was briefly unable: worth sending again. */
const TRANSIENT = new Set(['network', 'broker_unavailable', 'not_ready', 'rate_limited']);

export class Requests {
  readonly #pending = new Set<Pending>();
  readonly #settings: RequestSettings;
  /** The transport to send on: the current one while connected, else undefined. */
  readonly #connection: () => Transport | undefined;

  constructor(settings: RequestSettings, connection: () => Transport | undefined) {
    this.#settings = settings;
    this.#connection = connection;
  }

  /** `retry: false` (ephemeral publish): sent once, now, or rejected. */
  add(
    method: RequestMethod,
    params: Record<string, unknown>,
    retry: boolean,
    options: RequestOptions,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (!retry && this.#connection() === undefined) {
        return reject(new HeraldClientError('network', 'not connected'));
      }
      const signal = options.signal;
      const onAbort = (): void => request.settle(signal?.reason);
      const timer = setTimeout(
        () => request.settle(new HeraldClientError('timeout', `${method} timed out`)),
        options.timeoutMs ?? this.#settings.requestTimeoutMs,
      );
      const request: Pending = {
        method,
        params,
        retry,
        sent: false,
        attempt: 0,
        settle: (error, value) => {
          if (!this.#pending.delete(request)) return;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (error === undefined) resolve(value);
          else reject(error);
        },
      };
      this.#pending.add(request);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort);
      this.#send(request);
    });
  }

  /** A connection opened: send what waits. */
  flush(): void {
    for (const request of this.#pending) this.#send(request);
  }

  rejectAll(error: HeraldClientError): void {
    for (const request of this.#pending) request.settle(error);
  }

  #send(request: Pending): void {
    const t = this.#connection();
    if (t === undefined || request.sent) return;
    request.sent = true;
    t.request(request.method, request.params).then(
      (value) => request.settle(undefined, value),
      (error: HeraldClientError) => {
        request.sent = false;
        if (!request.retry || !TRANSIENT.has(error.code)) return request.settle(error);
        // Over HTTP the connection may still be up: try again after a backoff. Over a lost
        // WebSocket this finds no connection, and the next one sends it (flush).
        setTimeout(() => this.#send(request), backoffDelay(request.attempt++, this.#settings));
      },
    );
  }
}
