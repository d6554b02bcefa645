/**
 * Runs tasks one at a time per key, in the order they were queued; a task that fails does not
 * stop the next. A key's entry goes once its queue is empty, so memory follows what is in flight.
 * (The NATS broker publishes one publication per channel at a time with it; Durable Streams runs
 * one write per stream at a time.)
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }
}
