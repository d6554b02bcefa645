/**
 * Where everything lives in Redis. Every key of one channel carries the channel as its hash tag
 * (`{orders:42}`), so the keys of one channel share a slot. (A publish batch names the keys of
 * several channels, and presence `channels()` reads many: standalone Redis, not Redis Cluster.)
 * Channel names cannot contain braces (PROTOCOL.md section 2), so the tag is unambiguous.
 */
export class RedisKeys {
  readonly prefix: string;
  /** Pub/sub channel for messages to every node (`disconnect_user`). */
  readonly control: string;
  /** Pub/sub channel of node requests: every node subscribes once, so PUBLISH counts the nodes. */
  readonly requests: string;
  /** Sorted set: channel → latest expiry of any presence entry in it (for `channels()`). */
  readonly presenceIndex: string;
  /** Hash: `u:<user>` / `t:<jti>` → revocation JSON (one slot with its expiry zset). */
  readonly revocations: string;
  /** Sorted set: the same fields → expiry (seconds since the epoch; `+inf` = kept). */
  readonly revocationsExpiry: string;
  /** Pub/sub channel on which every stored revocation goes to every node. */
  readonly revocationsPubsub: string;
  readonly #pubsubPrefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.control = `${prefix}:control`;
    this.requests = `${prefix}:requests`;
    this.presenceIndex = `${prefix}:presence-channels`;
    this.revocations = `${prefix}:{revocations}`;
    this.revocationsExpiry = `${prefix}:{revocations}:exp`;
    this.revocationsPubsub = `${prefix}:revoked`;
    this.#pubsubPrefix = `${prefix}:pub:`;
  }

  /**
   * Hash: `epoch` (the stream generation), `top` (latest offset) and `run` (the Redis that wrote
   * it last: its run id, or `*` when that Redis fsyncs every write; scripts.ts ENSURE_EPOCH), and
   * `xp` (when the channel's key expiry was last pushed back, Redis clock ms; EXPIRY_REFRESH_MS).
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

  /** Hash of one metadata store entry: `v` (its version) and `d` (its value). */
  metadata(key: string): string {
    return `${this.prefix}:kv:${key}`;
  }

  /** Counter of metadata versions, one for every key so that none comes back after a delete. */
  get metadataVersion(): string {
    return `${this.prefix}:kv-version`;
  }

  /** Hash: clientId → ClientInfo JSON. */
  presence(channel: string): string {
    return `${this.prefix}:{${channel}}:presence`;
  }

  /** Sorted set: clientId → expiry (ms, Redis clock); refreshed by the client's node. */
  presenceExpiry(channel: string): string {
    return `${this.prefix}:{${channel}}:presence-exp`;
  }

  /** The pub/sub channel where one node receives the answers to its requests. */
  answers(nodeId: string): string {
    return `${this.prefix}:answers:${nodeId}`;
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
