/**
 * Revocations kept in this process: the embedded default, with the memory broker. They last as
 * long as the process (a restarted embedded hub has also forgotten everything else); Redis and
 * NATS keep them across restarts and share them between nodes.
 */
import { combine, isExpired, revocationKey, type Revocation, type RevocationStore } from './revocation.js';

const SWEEP_INTERVAL_MS = 60_000;

export class MemoryRevocationStore implements RevocationStore {
  readonly #entries = new Map<string, Revocation>();
  readonly #now: () => number;
  #listener: ((revocation: Revocation) => void) | undefined;
  #sweptAt = 0;

  constructor(options: { readonly now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  async start(listener: (revocation: Revocation) => void): Promise<void> {
    this.#listener = listener;
    this.#sweep();
    for (const entry of this.#entries.values()) listener(entry);
  }

  async add(revocation: Revocation): Promise<void> {
    this.#sweep();
    const key = revocationKey(revocation);
    const old = this.#entries.get(key);
    const entry = old === undefined ? revocation : combine(old, revocation);
    this.#entries.set(key, entry);
    this.#listener?.(entry);
  }

  async close(): Promise<void> {
    this.#listener = undefined;
  }

  /** Drops expired entries, at most once a minute, so memory follows the live ones. */
  #sweep(): void {
    const nowMs = this.#now();
    if (nowMs - this.#sweptAt < SWEEP_INTERVAL_MS) return;
    this.#sweptAt = nowMs;
    const now = nowMs / 1000;
    for (const [key, entry] of this.#entries) if (isExpired(entry, now)) this.#entries.delete(key);
  }
}
