/**
 * Items by the second of the time they are due (epoch ms), so that a once-a-second sweep reads
 * the seconds that have passed instead of every item: walking every session each second touched
 * each one whether or not it was due, a cost that grew with the connections a hub holds. The hub
 * keeps its sessions by token expiry in one (the expiry sweep), the refresh hook's scheduler its
 * sessions by the time they are offered to the hook in another.
 *
 * An item's time is read through `timeOf`, and an entry is found again by the time it was added
 * with: whatever `timeOf` reads changes only between `delete` and `add`. Items without a time
 * (`undefined`) are not held.
 */
export class TimeIndex<T> {
  readonly #bySecond = new Map<number, Set<T>>();
  readonly #timeOf: (item: T) => number | undefined;

  constructor(timeOf: (item: T) => number | undefined) {
    this.#timeOf = timeOf;
  }

  add(item: T): void {
    const second = this.#secondOf(item);
    if (second === undefined) return;
    let bucket = this.#bySecond.get(second);
    if (bucket === undefined) this.#bySecond.set(second, (bucket = new Set()));
    bucket.add(item);
  }

  delete(item: T): void {
    const second = this.#secondOf(item);
    if (second === undefined) return;
    const bucket = this.#bySecond.get(second);
    if (bucket?.delete(item) === true && bucket.size === 0) this.#bySecond.delete(second);
  }

  /**
   * Items whose time is at or before `now` (ms). The buckets are not sorted: a sweep reads every
   * bucket's key, one per second in use, never an item that is not due. Take a copy before
   * deleting or adding items: this walks the index itself.
   */
  *due(now: number): Iterable<T> {
    const current = Math.floor(now / 1000);
    for (const [second, bucket] of this.#bySecond) {
      if (second > current) continue;
      for (const item of bucket) if ((this.#timeOf(item) as number) <= now) yield item;
    }
  }

  get size(): number {
    let size = 0;
    for (const bucket of this.#bySecond.values()) size += bucket.size;
    return size;
  }

  /** The bucket of an item: the whole second its time falls in, none without a time. */
  #secondOf(item: T): number | undefined {
    const time = this.#timeOf(item);
    return time === undefined ? undefined : Math.floor(time / 1000);
  }
}
