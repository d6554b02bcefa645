/**
 * A circuit breaker for one backend hook: after `failures` failures in a row the circuit opens and
 * calls are refused at once for `cooldownMs` (a backend that is down is not waited on by every
 * client, and is not hammered while it comes back); then one trial call is let through, and its
 * outcome closes the circuit or opens it again.
 */
export class CircuitBreaker {
  readonly #failures: number;
  readonly #cooldownMs: number;
  readonly #now: () => number;
  #consecutive = 0;
  /** While open: when a trial call may go. */
  #openUntil = 0;
  #trialInFlight = false;

  constructor(failures: number, cooldownMs: number, now: () => number = Date.now) {
    this.#failures = failures;
    this.#cooldownMs = cooldownMs;
    this.#now = now;
  }

  /** Whether a call may go now; a call that is let through must report `succeeded` or `failed`. */
  tryPass(): boolean {
    if (this.#consecutive < this.#failures) return true;
    if (this.#trialInFlight || this.#now() < this.#openUntil) return false;
    this.#trialInFlight = true;
    return true;
  }

  get open(): boolean {
    return this.#consecutive >= this.#failures;
  }

  succeeded(): void {
    this.#consecutive = 0;
    this.#trialInFlight = false;
  }

  failed(): void {
    this.#trialInFlight = false;
    if (++this.#consecutive >= this.#failures) this.#openUntil = this.#now() + this.#cooldownMs;
  }
}
