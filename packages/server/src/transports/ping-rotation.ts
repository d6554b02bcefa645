/**
 * A transport's open connections, and their keep-alive pings spread over the ping interval.
 *
 * Pinging every connection in one sweep stalls the hub: at 10,000 WebSocket connections the
 * sweep is 10,000 writes, then 10,000 pongs come back at once, and a publication that lands in it
 * waits it out. Measured on the bench machine with `node scripts/ping-stall.mjs` (`herald serve`,
 * 10,000 idle `ws` clients, the event loop's longest delay in windows of 5 s): 232-267 ms at each
 * sweep of pings every 5 s before, 30-51 ms spread; 14-46 ms spread at the default 25 s, and
 * 13-15 ms with no pings at all. So each connection gets a slot, given in turn as connections
 * arrive, and every `PING_TICK_MS` one slot's connections are pinged: each still once per interval.
 *
 * Connections live in their slot's set (no per-connection map): the rotation is also the
 * transport's registry, iterable for drain and deadlines.
 */

/** How often a slot is pinged: the interval is cut into slots this long. */
export const PING_TICK_MS = 250;

/** What the rotation holds: the slot is the rotation's, kept on the item to find it again. */
export interface Rotating {
  pingSlot: number;
}

export class PingRotation<T extends Rotating> implements Iterable<T> {
  readonly #slots: Set<T>[];
  readonly #ping: (item: T) => void;
  /** The slot the next item joins, and the slot the next tick pings. */
  #nextSlot = 0;
  #due = 0;
  #size = 0;

  /** `ping` is called for each item once per `intervalMs`, cut into ticks of `tickMs`. */
  constructor(intervalMs: number, ping: (item: T) => void, tickMs = PING_TICK_MS) {
    const count = Math.max(1, Math.round(intervalMs / tickMs));
    this.#slots = Array.from({ length: count }, () => new Set<T>());
    this.#ping = ping;
  }

  get size(): number {
    return this.#size;
  }

  add(item: T): void {
    const slot = this.#nextSlot;
    this.#nextSlot = (slot + 1) % this.#slots.length;
    item.pingSlot = slot;
    this.#slots[slot]!.add(item);
    this.#size++;
  }

  delete(item: T): void {
    if (this.#slots[item.pingSlot]?.delete(item) === true) this.#size--;
  }

  /** Pings the connections of the slot that is due; call every `tickMs`. */
  tick(): void {
    const slot = this.#slots[this.#due]!;
    this.#due = (this.#due + 1) % this.#slots.length;
    // A ping may end its connection (a dead peer), deleting it from the set: a Set's iteration
    // goes on past a deleted entry.
    for (const item of slot) this.#ping(item);
  }

  *[Symbol.iterator](): Iterator<T> {
    for (const slot of this.#slots) yield* slot;
  }
}
