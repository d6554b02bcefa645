/**
 * Which text streams of a channel are still open, as far as this node knows: what a subscriber
 * joining without a position needs, so that it gets each open stream's text so far (docs/streams.md).
 *
 * The channel state notes every publication it dispatches. Streams opened before this node
 * received the channel are found once, from a short read of the channel's newest publications
 * (`scan`): an append names its stream, so a stream still being written shows up there even when
 * it opened long before. This is a hint for where to read from, not the truth: the joiner's read
 * is rolled up and only streams whose opening it holds and that are still open are given.
 */
import type { Position } from '@herald/protocol';
import type { PublicationRecord } from '../broker/broker.js';
import { streamPart } from './stream-part.js';

/** How many of the newest publications a channel's first subscribe on a node looks at. */
export const STREAM_SCAN_LIMIT = 100;
/** ... and at most this many bytes of them. */
export const STREAM_SCAN_BYTES = 64 * 1024;

export class OpenStreams {
  #epoch = '';
  readonly #open = new Set<number>();
  /** Streams seen closing live while the scan had not come in: the scan must not reopen them. */
  #closedBeforeScan: Set<number> | undefined = new Set();

  /** Whether the scan has been folded in. */
  get scanned(): boolean {
    return this.#closedBeforeScan === undefined;
  }

  /** A publication dispatched to this node. */
  note(record: PublicationRecord): void {
    const part = streamPart(record);
    if (part === undefined) return;
    if (record.epoch !== this.#epoch) this.#reset(record.epoch);
    if (part.opens) this.#open.add(part.id);
    else if (part.status !== 'open') {
      this.#open.delete(part.id);
      this.#closedBeforeScan?.add(part.id);
    }
  }

  /** Folds in a read of the channel's newest publications (oldest first). */
  scan(records: readonly PublicationRecord[], top: Position): void {
    const closed = this.#closedBeforeScan ?? new Set<number>();
    this.#closedBeforeScan = undefined;
    if (top.epoch !== this.#epoch) {
      if (this.#open.size > 0 && this.#epoch !== '') return;
      this.#reset(top.epoch);
    }
    const found = new Set<number>();
    for (const record of records) {
      const part = streamPart(record);
      if (part === undefined) continue;
      if (part.status === 'open') found.add(part.id);
      else {
        found.delete(part.id);
        closed.add(part.id);
      }
    }
    for (const id of found) if (!closed.has(id)) this.#open.add(id);
  }

  /** Where a joiner reads from to get every open stream from its opening; undefined when none is open. */
  joinFrom(): Position | undefined {
    const epoch = this.#epoch;
    if (this.#open.size === 0) return undefined;
    let oldest = Infinity;
    for (const id of this.#open) if (id < oldest) oldest = id;
    return { offset: oldest - 1, epoch };
  }

  /** Forgets the streams a joiner's read found closed or could not reach (trimmed, another epoch). */
  keepOnly(open: ReadonlySet<number>): void {
    for (const id of this.#open) if (!open.has(id)) this.#open.delete(id);
  }

  #reset(epoch: string): void {
    this.#epoch = epoch;
    this.#open.clear();
  }
}
