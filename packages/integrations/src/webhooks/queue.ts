/**
 * A FIFO with a fixed capacity that, when full, gives up its OLDEST item to make room. For state
 * events (online/offline, occupied/vacated) the newest ones are what the backend needs, so the
 * dispatcher drops the oldest and dead-letters it (docs/integrations.md, "bounded queue").
 */
export class DropOldestQueue<T> {
  readonly capacity: number;
  #items: T[] = [];
  #head = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.capacity = capacity;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Appends; when the queue was full, removes and returns the oldest item. */
  push(item: T): T | undefined {
    const dropped = this.length >= this.capacity ? this.shift() : undefined;
    this.#items.push(item);
    return dropped;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head] as T;
    this.#items[this.#head] = undefined as T;
    this.#head++;
    // Compact once the consumed prefix dominates, so memory follows the live length.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes and returns everything, oldest first. */
  drain(): T[] {
    const rest = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}
