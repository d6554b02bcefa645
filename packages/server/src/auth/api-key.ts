/** The server API key check: constant-time, so response timing reveals nothing of the key. */
import { createHash, timingSafeEqual } from 'node:crypto';

export class ApiKey {
  readonly #digest: Buffer;

  constructor(key: string) {
    this.#digest = digest(key);
  }

  /** Compares digests, which always have the same length, so no length leaks either. */
  matches(candidate: string): boolean {
    return timingSafeEqual(this.#digest, digest(candidate));
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
