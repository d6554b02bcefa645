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
 * A transport may let a due ping wait for a write to ride on (`settle`): the ping is then sent in
 * the same write as the connection's next publication, and only a connection that got none within
 * `SETTLE_TICKS` (at most a quarter of the interval, so the pong has the rest) is pinged alone.
 *
 * Connections live in their slot's set (no per-connection map): the rotation is also the
 * transport's registry, iterable for drain and deadlines.
 */

/** How often a slot is pinged: the interval is cut into slots this long. */
export const PING_TICK_MS = 250;

/** How many ticks a due ping may wait for a write to ride on: 1 s. */
export const SETTLE_TICKS = 4;

/** What the rotation holds: the slot is the rotation's, kept on the item to find it again. */
export interface Rotating {
  pingSlot: number;
}

export class PingRotation<T extends Rotating> implements Iterable<T> {
  readonly #slots: Set<T>[];
  readonly #ping: (item: T) => void;
  readonly #settle: ((item: T) => void) | undefined;
  /** Ticks between a slot's ping and its settling; 0 settles right after the ping. */
  readonly #settleLag: number;
  /** The slot the next item joins, and the slot the next tick pings. */
  #nextSlot = 0;
  #due = 0;
  #size = 0;

  /**
   * `ping` is called for each item once per `intervalMs`, cut into ticks of `tickMs`; `settle`, if
   * given, up to `SETTLE_TICKS` later for the same items (to send the pings that found no write
   * to ride on).
   */
  constructor(intervalMs: number, ping: (item: T) => void, settle?: (item: T) => void, tickMs = PING_TICK_MS) {
    const count = Math.max(1, Math.round(intervalMs / tickMs));
    this.#slots = Array.from({ length: count }, () => new Set<T>());
    this.#ping = ping;
    this.#settle = settle;
    this.#settleLag = Math.min(SETTLE_TICKS, Math.floor(count / 4));
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

  /** Pings the slot that is due, then settles the one pinged `settleLag` ticks ago; call every `tickMs`. */
  tick(): void {
    const count = this.#slots.length;
    const due = this.#due;
    this.#due = (due + 1) % count;
    // A ping may end its connection (a dead peer), deleting it from the set: a Set's iteration
    // goes on past a deleted entry.
    for (const item of this.#slots[due]!) this.#ping(item);
    const settle = this.#settle;
    if (settle === undefined) return;
    for (const item of this.#slots[(due + count - this.#settleLag) % count]!) settle(item);
  }

  *[Symbol.iterator](): Iterator<T> {
    for (const slot of this.#slots) yield* slot;
  }
}
