/**
 * One publication on its way to this node's subscribers. Each transport encodes it at most once
 * (the first subscriber of that transport pays, the others reuse the bytes), so fan-out cost is
 * a write per subscriber and never a serialization per subscriber.
 */
import type { PublicationRecord } from '../broker/broker.js';
import { streamPart } from './stream-part.js';

/**
 * A per-transport encoding; `slot` indexes the cache and is unique per encoder. An encoding built
 * on another one reads it from `delivery.encoded`, so each is made once per publication however
 * many encodings of one transport a fan-out needs.
 */
export interface Encoder<T> {
  readonly slot: number;
  encode(record: PublicationRecord, delivery: Delivery): T;
}

let nextSlot = 0;
export function defineEncoder<T>(encode: (record: PublicationRecord, delivery: Delivery) => T): Encoder<T> {
  return { slot: nextSlot++, encode };
}

export class Delivery {
  readonly record: PublicationRecord;
  readonly #cache: unknown[] = [];
  #streamPiece: boolean | undefined;

  constructor(record: PublicationRecord) {
    this.record = record;
  }

  /** Whether the publication is a piece of a text stream (asked once per node, not per subscriber). */
  get streamPiece(): boolean {
    return (this.#streamPiece ??= streamPart(this.record) !== undefined);
  }

  encoded<T>(encoder: Encoder<T>): T {
    let value = this.#cache[encoder.slot];
    if (value === undefined) {
      value = encoder.encode(this.record, this);
      this.#cache[encoder.slot] = value;
    }
    return value as T;
  }
}
