/**
 * Runs async tasks with at most `limit` in flight; the others wait their turn, first come first
 * served. The hub sends its history re-reads through one: when the broker comes back after an
 * outage, every channel with subscribers re-reads what it missed, and thousands of reads in the
 * same moment would hit the broker just as it recovers.
 */
export class ConcurrencyLimit {
  readonly #limit: number;
  #active = 0;
  /** Wake-up calls of the waiting tasks; `#head` is the next one (no shift(): O(1) per turn). */
  #waiting: Array<() => void> = [];
  #head = 0;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
    this.#limit = limit;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    // A finished task hands its slot straight to the next waiter, so `#active` counts it already.
    if (this.#active < this.#limit) this.#active++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    if (this.#head < this.#waiting.length) {
      const next = this.#waiting[this.#head++] as () => void;
      if (this.#head === this.#waiting.length) {
        this.#waiting = [];
        this.#head = 0;
      }
      next();
    } else {
      this.#active--;
    }
  }
}
