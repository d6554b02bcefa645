/**
 * What this node last learned about each channel's stream, from its own publishes and from the
 * fan-out (republished messages carry their stream sequence): the latest stored message, and the
 * stream sequence of recent offsets. Publishing uses the first as its optimistic guess of the top
 * (a wrong guess only costs a retry); history uses the second to start reading at the right
 * sequence instead of searching for it. Only a hint: everything read through it is checked.
 */
export interface Stored {
  /** Stream sequence of the channel's latest message; 0 when the channel has none. */
  readonly seq: number;
  readonly offset: number;
  readonly epoch: string;
}

interface Entry {
  last: Stored;
  readonly seqs: Map<number, number>;
}

export class StreamCache {
  readonly #channels = new Map<string, Entry>();
  readonly #maxChannels: number;
  readonly #perChannel: number;

  constructor(maxChannels = 10_000, perChannel = 1_024) {
    this.#maxChannels = maxChannels;
    this.#perChannel = perChannel;
  }

  last(channel: string): Stored | undefined {
    return this.#channels.get(channel)?.last;
  }

  seqOf(channel: string, epoch: string, offset: number): number | undefined {
    const entry = this.#channels.get(channel);
    return entry?.last.epoch === epoch ? entry.seqs.get(offset) : undefined;
  }

  /**
   * Remembers a stored message of `channel`: `stored.offset` is its last publication's offset,
   * `first` its first one's (a message may hold several consecutive publications, message.ts).
   */
  learn(channel: string, stored: Stored, first = stored.offset): void {
    let entry = this.#channels.get(channel);
    if (entry === undefined || entry.last.epoch !== stored.epoch) {
      entry = { last: stored, seqs: new Map() };
      this.#channels.delete(channel);
      this.#channels.set(channel, entry);
      // Oldest learned first: the map's insertion order.
      if (this.#channels.size > this.#maxChannels) this.#channels.delete(this.#channels.keys().next().value as string);
    } else if (stored.seq > entry.last.seq) {
      entry.last = stored;
    }
    if (stored.seq > 0) {
      for (let offset = Math.max(first, stored.offset - this.#perChannel + 1); offset <= stored.offset; offset++) {
        entry.seqs.set(offset, stored.seq);
        entry.seqs.delete(offset - this.#perChannel);
      }
      // Offsets learned with gaps (other nodes' publications unseen) leave entries the line above
      // never meets: prune them now and then, so the map stays bounded.
      if (entry.seqs.size > this.#perChannel * 2) {
        for (const offset of entry.seqs.keys())
          if (offset <= stored.offset - this.#perChannel) entry.seqs.delete(offset);
      }
    }
  }

  forget(channel: string): void {
    this.#channels.delete(channel);
  }

  /** After a reconnect: the server may have lost what this remembers. */
  clear(): void {
    this.#channels.clear();
  }
}
