/**
 * The outbox in this process: the embedded default, and what `memory` shared state means. Events
 * live as long as the process: a graceful close hands them back (the dispatcher sends them within
 * its grace period or dead-letters them), a crash loses them.
 *
 * Bound: events ready plus events waiting for a retry never exceed `capacity`; appending to a full
 * outbox gives up the oldest ready event, else the oldest waiting one (DropOldestQueue).
 */
import type { OutgoingEvent } from './events.js';
import type { Claim, Outbox } from './outbox.js';
import { DropOldestQueue } from './queue.js';

export class MemoryOutbox implements Outbox {
  readonly name = 'memory';
  readonly durable = false;
  readonly #ready: DropOldestQueue<OutgoingEvent>;
  readonly #waiting = new Map<OutgoingEvent, NodeJS.Timeout>();
  readonly #waiters = new Set<() => void>();

  constructor(capacity: number) {
    this.#ready = new DropOldestQueue(capacity);
  }

  async start(): Promise<void> {}

  size(): number {
    return this.#ready.length + this.#waiting.size;
  }

  /** Synchronous in effect: the event is queued before the first await of the caller. */
  async append(event: OutgoingEvent): Promise<OutgoingEvent[]> {
    const dropped: OutgoingEvent[] = [];
    if (this.size() >= this.#ready.capacity) {
      // Full: the oldest ready event makes room, or, when all are waiting to retry, the oldest of those.
      let oldest = this.#ready.shift();
      if (oldest === undefined) {
        const [waiting, timer] = this.#waiting.entries().next().value as [OutgoingEvent, NodeJS.Timeout];
        clearTimeout(timer);
        this.#waiting.delete(waiting);
        oldest = waiting;
      }
      dropped.push(oldest);
    }
    this.#ready.push(event);
    this.#signal();
    return dropped;
  }

  async *claim(max: number, waitMs: number, signal: AbortSignal): AsyncIterable<Claim> {
    if (this.#ready.length === 0 && !signal.aborted) await this.#nextPush(waitMs, signal);
    for (let n = 0; n < max && !signal.aborted; n++) {
      const event = this.#ready.shift();
      if (event === undefined) return;
      yield this.#claimOf(event);
    }
  }

  expedite(): void {
    for (const [event, timer] of this.#waiting) {
      clearTimeout(timer);
      this.#ready.push(event);
    }
    this.#waiting.clear();
    this.#signal();
  }

  async close(): Promise<OutgoingEvent[]> {
    for (const timer of this.#waiting.values()) clearTimeout(timer);
    const rest = [...this.#ready.drain(), ...this.#waiting.keys()];
    this.#waiting.clear();
    this.#signal();
    return rest;
  }

  #claimOf(event: OutgoingEvent): Claim {
    return {
      event,
      ack: async () => undefined,
      retry: async (delayMs) => {
        const timer = setTimeout(() => {
          this.#waiting.delete(event);
          this.#ready.push(event);
          this.#signal();
        }, delayMs);
        timer.unref();
        this.#waiting.set(event, timer);
      },
    };
  }

  #signal(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves at the next append or due retry, after `waitMs`, or when `signal` aborts. */
  #nextPush(waitMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      // Unref'd: a dispatcher nobody closed does not keep the process alive.
      const timer = setTimeout(done, waitMs);
      timer.unref();
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }
}
