/**
 * Sessions by the second their token expires, so that the server's once-a-second expiry sweep
 * reads the seconds that have passed instead of every session: walking them all touched each
 * session and its credentials every second, a cost that grew with the connections a hub holds
 * whether or not anything expired. Sessions without an expiry are not held.
 *
 * An entry is found again by the expiry it was added with, so a session's credentials are
 * replaced between `delete` and `add` (hub.ts).
 */
interface Expiring {
  readonly credentials: { readonly expiresAt?: number | undefined };
}

export class ExpiryIndex<T extends Expiring> {
  readonly #bySecond = new Map<number, Set<T>>();

  add(item: T): void {
    const second = secondOf(item);
    if (second === undefined) return;
    let bucket = this.#bySecond.get(second);
    if (bucket === undefined) this.#bySecond.set(second, (bucket = new Set()));
    bucket.add(item);
  }

  delete(item: T): void {
    const second = secondOf(item);
    if (second === undefined) return;
    const bucket = this.#bySecond.get(second);
    if (bucket?.delete(item) === true && bucket.size === 0) this.#bySecond.delete(second);
  }

  /**
   * Items whose expiry is at or before `now` (ms). The buckets are not sorted: the sweep reads
   * every bucket's key, one per second of token lifetime in use, never a session it does not end.
   */
  *expired(now: number): Iterable<T> {
    const current = Math.floor(now / 1000);
    for (const [second, bucket] of this.#bySecond) {
      if (second > current) continue;
      for (const item of bucket) if ((item.credentials.expiresAt as number) <= now) yield item;
    }
  }

  get size(): number {
    let size = 0;
    for (const bucket of this.#bySecond.values()) size += bucket.size;
    return size;
  }
}

/** The bucket of an item: the whole second its expiry falls in, none without an expiry. */
function secondOf(item: Expiring): number | undefined {
  const expiresAt = item.credentials.expiresAt;
  return expiresAt === undefined ? undefined : Math.floor(expiresAt / 1000);
}
