/**
 * The roll-up window (docs/streams.md): appends to a text stream wait in their subscription's
 * window, and one shared tick every `windowMs` flushes every window that holds any, each as its
 * roll-up. So a stream of 100 appends a second costs a subscriber at most 1000 / windowMs
 * deliveries a second (25 at the default 40 ms), whatever the transport, and a slow subscriber's
 * queue holds merged text rather than one frame per token.
 *
 * One timer for the whole hub, not one per subscription: the windows of every subscriber flush in
 * the same event-loop turn, so the transports' per-turn write batching (turn-batch.ts) sends each
 * socket one write per tick. The timer runs only while some window holds something.
 */

export interface WindowFlusher<S> {
  /** Delivers what `sub`'s window holds (the session checks the subscription is still current). */
  flush(sub: S): void;
}

export class AppendWindows<S> {
  readonly windowMs: number;
  readonly #pending = new Set<S>();
  readonly #flusher: WindowFlusher<S>;
  #timer: NodeJS.Timeout | undefined;

  constructor(windowMs: number, flusher: WindowFlusher<S>) {
    this.windowMs = windowMs;
    this.#flusher = flusher;
  }

  /** `sub`'s window holds an append: it flushes at the next tick. */
  add(sub: S): void {
    this.#pending.add(sub);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.tick(), this.windowMs);
      this.#timer.unref();
    }
  }

  /** `sub`'s window was flushed early (a publication that must not wait behind it) or ended. */
  delete(sub: S): void {
    this.#pending.delete(sub);
  }

  /** Flushes every window that holds something; stops the timer when none did. */
  tick(): void {
    if (this.#pending.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const subs = [...this.#pending];
    this.#pending.clear();
    for (const sub of subs) this.#flusher.flush(sub);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }
}
