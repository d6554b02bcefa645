/** A token bucket on an injected clock: connection admission and per-connection command rates. */

export interface RateLimit {
  /** Tokens added per second; 0 turns the limit off. */
  readonly perSecond: number;
  /** Bucket size: how many may arrive at once after a quiet period. */
  readonly burst: number;
}

/** A token bucket on an injected clock. Tokens are fractional; taking one needs a whole one. */
export class TokenBucket {
  readonly #limit: RateLimit;
  #tokens: number;
  #refilledAt: number;

  constructor(limit: RateLimit, now: number) {
    this.#limit = limit;
    this.#tokens = limit.burst;
    this.#refilledAt = now;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#refilledAt) / 1000;
    this.#tokens = Math.min(this.#limit.burst, this.#tokens + elapsed * this.#limit.perSecond);
    this.#refilledAt = now;
  }

  available(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= 1;
  }

  /** Call only after `available` said yes at the same `now`. */
  take(): void {
    this.#tokens -= 1;
  }

  /** Takes a token when one is there; false when the rate is exceeded. */
  tryTake(now: number): boolean {
    if (!this.available(now)) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whole seconds until a token is there again (at least 1). */
  retryAfter(now: number): number {
    this.#refill(now);
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#limit.perSecond));
  }

  /** True when the bucket is full again, so forgetting it changes nothing. */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.#limit.burst;
  }
}
