/**
 * Forks (PROTOCOL.md 4.2): which streams read which, so that a source with live forks is only
 * soft-deleted (410, its data kept for the forks), and the last fork's deletion finishes it (and
 * so on up the chain). Each source's record lists its forks' channels; the list changes by
 * compare-and-set, and is checked against the forks' own records before it keeps a source alive,
 * so a fork whose creation failed half-way never pins its source for good.
 */
import { DsError, notFound } from './errors.js';
import { decodeRecord, encodeRecord, type StreamRecord } from './record.js';
import { busy, type StreamStore } from './store.js';
import type { Segment } from './publication.js';

const MAX_ATTEMPTS = 50;

export class ForkRegistry {
  readonly #store: StreamStore;

  constructor(store: StreamStore) {
    this.#store = store;
    store.liveForks = (channel, record) => this.live(channel, record);
    store.onHardDelete = async (channel, record) => {
      if (record.fork !== undefined) await this.remove(record.fork.source, channel);
    };
  }

  /** Records `fork` as reading `source`: 404 when the source is missing, 409 when it is deleted. */
  async add(source: string, fork: string): Promise<void> {
    await this.#update(source, (record) => {
      if (record.deletion !== undefined) throw new DsError(409, 'conflict', 'the source stream is deleted');
      return record.forks.includes(fork) ? undefined : { ...record, forks: [...record.forks, fork] };
    });
  }

  /**
   * `fork` no longer reads `source`. A soft-deleted source that no fork reads any more goes for
   * good, and releases its own source in turn.
   */
  async remove(source: string, fork: string): Promise<void> {
    const metadata = this.#store.metadata;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await metadata.get(source);
      if (entry === undefined) return;
      const record = decodeRecord(entry.value);
      const forks = record.forks.filter((f) => f !== fork);
      if (record.deletion === 'soft' && forks.length === 0) {
        if (await this.#store.drop(source, record, entry.version)) return;
        continue;
      }
      if (forks.length === record.forks.length) return;
      if ((await metadata.put(source, encodeRecord({ ...record, forks }), entry.version)) !== undefined) return;
    }
    throw busy();
  }

  /** The forks in `record.forks` that exist and still name `channel` as their source. */
  async live(channel: string, record: StreamRecord): Promise<string[]> {
    const live: string[] = [];
    for (const fork of record.forks) {
      const entry = await this.#store.metadata.get(fork);
      if (entry !== undefined && decodeRecord(entry.value).fork?.source === channel) live.push(fork);
    }
    return live;
  }

  /** Applies `change` to `channel`'s record by compare-and-set; `change` returns undefined for no change. */
  async #update(channel: string, change: (record: StreamRecord) => StreamRecord | undefined): Promise<void> {
    const metadata = this.#store.metadata;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await metadata.get(channel);
      if (entry === undefined) throw notFound('the source stream does not exist');
      const next = change(decodeRecord(entry.value));
      if (next === undefined) return;
      if ((await metadata.put(channel, encodeRecord(next), entry.version)) !== undefined) return;
    }
    throw busy();
  }
}

/**
 * The segments a fork at `offset` of `source` inherits: the source's own inherited ones and its
 * own publications, cut at `offset`.
 */
export function inheritedUpTo(source: StreamRecord, sourceChannel: string, offset: number): Segment[] {
  const segments: Segment[] = [];
  for (const segment of source.inherited) {
    if (segment.from >= offset) break;
    segments.push({ ...segment, to: Math.min(segment.to, offset) });
  }
  const ownFrom = source.base + source.created - 1;
  if (offset > ownFrom) {
    segments.push({ channel: sourceChannel, epoch: source.epoch, base: source.base, from: ownFrom, to: offset });
  }
  return segments;
}

/** A 410 of the source (deleted) is a 409 for the fork to be created (PROTOCOL.md 4.2). */
export function asForkError(error: unknown): unknown {
  if (error instanceof DsError && error.status === 410) {
    return new DsError(409, 'conflict', `the source stream is not available: ${error.message}`);
  }
  return error;
}
