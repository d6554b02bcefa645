/**
 * Where everything lives in Redis. Every key of one channel carries the channel as its hash tag
 * (`{orders:42}`), so the one Lua script that touches them names keys of a single slot.
 * Channel names cannot contain braces (PROTOCOL.md section 2), so the tag is unambiguous.
 */
export class RedisKeys {
  readonly prefix: string;
  /** Pub/sub channel for messages to every node (`disconnect_user`). */
  readonly control: string;
  /** Sorted set: channel → latest expiry of any presence entry in it (for `channels()`). */
  readonly presenceIndex: string;
  readonly #pubsubPrefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.control = `${prefix}:control`;
    this.presenceIndex = `${prefix}:presence-channels`;
    this.#pubsubPrefix = `${prefix}:pub:`;
  }

  /**
   * Hash: `epoch` (the stream generation), `top` (latest offset) and `run` (the Redis that wrote
   * it last: its run id, or `*` when that Redis fsyncs every write; scripts.ts ENSURE_EPOCH).
   */
  meta(channel: string): string {
    return `${this.prefix}:{${channel}}:meta`;
  }

  /** Stream of retained publications; entry ids are `<offset>-<stored at, ms>`. */
  stream(channel: string): string {
    return `${this.prefix}:{${channel}}:stream`;
  }

  idempotency(channel: string, key: string): string {
    return `${this.prefix}:{${channel}}:idem:${key}`;
  }

  /** Hash: clientId → ClientInfo JSON. */
  presence(channel: string): string {
    return `${this.prefix}:{${channel}}:presence`;
  }

  /** Sorted set: clientId → expiry (ms, Redis clock); refreshed by the client's node. */
  presenceExpiry(channel: string): string {
    return `${this.prefix}:{${channel}}:presence-exp`;
  }

  /** The pub/sub channel a node subscribes to for one channel's publications and join/leave. */
  pubsub(channel: string): string {
    return this.#pubsubPrefix + channel;
  }

  /** The channel of a pub/sub channel name, or undefined when it is not one of ours. */
  channelOf(pubsubName: string): string | undefined {
    return pubsubName.startsWith(this.#pubsubPrefix) ? pubsubName.slice(this.#pubsubPrefix.length) : undefined;
  }
}
