/** The server API key check: constant-time, so response timing reveals nothing of the key. */
import * as crypto from 'node:crypto';

/**
 * Node's one-shot `crypto.hash` (Node 20.12 and later, not in the typings this project builds
 * with) digests a short string in about half the time of `createHash()...digest()`, and the key is
 * checked on every server API request; older Node falls back.
 */
const oneShot = (crypto as unknown as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash;

function digest(value: string): Buffer {
  return oneShot === undefined
    ? crypto.createHash('sha256').update(value).digest()
    : oneShot('sha256', value, 'buffer');
}

export class ApiKey {
  readonly #digest: Buffer;

  constructor(key: string) {
    this.#digest = digest(key);
  }

  /** Compares digests, which always have the same length, so no length leaks either. */
  matches(candidate: string): boolean {
    return crypto.timingSafeEqual(this.#digest, digest(candidate));
  }
}
