/**
 * A remote JWK set (`jwksUrl`), through jose's `createRemoteJWKSet`: the set is cached for
 * `cacheSeconds`, and a token whose `kid` the cached set lacks makes jose fetch it again, but
 * never sooner than `cooldownSeconds` after the last successful fetch. jose does not pace failed
 * fetches, so a dead or slow identity provider would be asked again for every such token: the
 * fetch below refuses to go out more than once per `FAILED_FETCH_PAUSE_MS` after a failure, so
 * tokens with made-up `kid`s cannot make the hub flood anyone.
 *
 * A set that cannot be fetched is not the token's fault: those failures are `keys_unavailable`
 * (503), which clients retry with backoff, never `unauthorized`.
 */
import { HeraldError } from '@herald/protocol';
import { createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey } from 'jose';

export interface JwksOptions {
  readonly url: string;
  /** Seconds a fetched set is used before it is fetched again. */
  readonly cacheSeconds: number;
  /** Seconds after a successful fetch during which an unknown `kid` does not cause another. */
  readonly cooldownSeconds: number;
  readonly timeoutMs?: number;
  /** For tests: the clock the pause after a failure is measured on. */
  readonly now?: () => number;
}

/** After a failed fetch, no other fetch goes out for this long. */
export const FAILED_FETCH_PAUSE_MS = 5_000;

/** Missing `kid`s remembered (deferMissing); past this the memory starts over. */
const MAX_REMEMBERED_KIDS = 10_000;

/** Thrown instead of fetching while the pause after a failure lasts. */
class JwksPaused extends Error {}

export interface RemoteKeys {
  readonly getKey: JWTVerifyGetKey;
  /** Fetch attempts that went out on the network (tests and metrics). */
  readonly fetches: number;
  /** Fetches the set now (at start), so the first tokens do not wait for it. Never throws. */
  prefetch(): Promise<boolean>;
}

export function remoteKeys(options: JwksOptions): RemoteKeys {
  const now = options.now ?? Date.now;
  let failedAt = Number.NEGATIVE_INFINITY;
  let fetches = 0;
  /** Sets received so far: which one a missing `kid` was first looked up in. */
  let generation = 0;
  const firstMissing = new Map<string, number>();
  const paced = async (url: string, init: RequestInit): Promise<Response> => {
    if (now() - failedAt < FAILED_FETCH_PAUSE_MS) throw new JwksPaused('the last JWKS fetch failed moments ago');
    fetches++;
    const response = await fetch(url, init);
    if (response.status === 200) generation++;
    return response;
  };
  /**
   * A `kid` the held set lacks, while no fetch may go out: deferred (retry later) until a set
   * fetched after the first miss has been checked too; refused from then on. So a key published
   * moments after a fetch is not refused, and a retired or made-up one is, within one cooldown.
   */
  const deferMissing = (kid: unknown): boolean => {
    const name = typeof kid === 'string' ? kid : '';
    const first = firstMissing.get(name);
    if (first !== undefined) return first === generation;
    if (firstMissing.size >= MAX_REMEMBERED_KIDS) firstMissing.clear();
    firstMissing.set(name, generation);
    return true;
  };
  const set = createRemoteJWKSet(new URL(options.url), {
    cacheMaxAge: options.cacheSeconds * 1000,
    cooldownDuration: options.cooldownSeconds * 1000,
    timeoutDuration: options.timeoutMs ?? 5_000,
    [customFetch]: paced,
  });
  const getKey: JWTVerifyGetKey = async (header, token) => {
    const coolingDown = set.coolingDown;
    try {
      return await set(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey && coolingDown && deferMissing(header.kid)) {
        throw new HeraldError('keys_unavailable', 'the token signing key is not known yet; try again shortly');
      }
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      if (error instanceof errors.JOSENotSupported) throw error;
      // Unreachable, not 200, not JSON, not a JWK set: pause. A refusal during the pause does not
      // extend it, or steady traffic would keep the hub from ever asking again.
      if (!(error instanceof JwksPaused)) failedAt = now();
      throw new HeraldError('keys_unavailable', 'the token signing keys (JWKS) could not be fetched; try again');
    }
  };
  return {
    getKey,
    get fetches() {
      return fetches;
    },
    async prefetch() {
      try {
        await set.reload();
        return true;
      } catch {
        failedAt = now();
        return false;
      }
    },
  };
}
