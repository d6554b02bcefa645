/**
 * Revocations in Redis (`RevocationStore`): one hash field per user or token id holding the entry
 * as JSON, a sorted set of their expiries, and a pub/sub channel that carries every stored entry
 * to every node. They survive node restarts (and Redis restarts as far as Redis persists).
 *
 * Adding is a compare-and-set: read the field, combine in TypeScript (`combineRevocations`, the
 * same pure rule as everywhere), then a script writes and publishes only if the field is still
 * what was read, so two nodes revoking the same user at once cannot lose a `before`.
 *
 * Following: subscribe first, then read everything, so an entry stored in between arrives at
 * least once. After the pub/sub connection comes back the same happens again: whatever was
 * published while it was down is read from the hash. Expired entries are deleted as they are read.
 */
import {
  combineRevocations,
  parseRevocation,
  revocationKey,
  type Revocation,
  type RevocationStore,
} from '@herald/server';
import type { Logger } from 'pino';
import type { RedisKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { Script } from './scripts.js';

/** Entries expired this long ago are deleted (nodes' clocks may differ from Redis's). */
const PURGE_SLACK_SECONDS = 60;
const PURGE = `local t = redis.call('TIME')
local cutoff = tonumber(t[1]) - ${PURGE_SLACK_SECONDS}
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[1]))
for i = 1, #dead, 500 do
  local last = math.min(i + 499, #dead)
  redis.call('HDEL', KEYS[1], unpack(dead, i, last))
  redis.call('ZREM', KEYS[2], unpack(dead, i, last))
end`;

/** KEYS: hash, expiry zset. ARGV: purge limit. Deletes expired entries; returns the others' JSON. */
const LOAD = `${PURGE}
return redis.call('HVALS', KEYS[1])`;

/**
 * KEYS: hash, expiry zset. ARGV: purge limit, field, JSON read before ('' = none), new JSON,
 * expiry score, pub/sub channel. Returns 1 when written and published, 0 when the field changed.
 */
const PUT = `${PURGE}
local current = redis.call('HGET', KEYS[1], ARGV[2]) or ''
if current ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
redis.call('PUBLISH', ARGV[6], ARGV[4])
return 1`;

const loadScript = new Script(LOAD);
const putScript = new Script(PUT);
const LOAD_PURGE_LIMIT = 10_000;
const PUT_PURGE_LIMIT = 100;
const MAX_PUT_ATTEMPTS = 10;
const RETRY_MS = 500;

export interface RedisRevocationsOptions {
  readonly logger: Logger;
}

export class RedisRevocations implements RevocationStore {
  readonly #link: RedisLink;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;
  #listener: ((revocation: Revocation) => void) | undefined;
  #unlisten: (() => void) | undefined;
  /** The pub/sub connection is subscribed and everything was read since it last (re)connected. */
  #current = false;
  #catchingUp: Promise<void> | undefined;
  #closed = false;
  #started = false;
  readonly #onMessage = (name: string, text: string): void => {
    if (name !== this.#keys.revocationsPubsub) return;
    this.#deliver(text);
  };

  constructor(link: RedisLink, keys: RedisKeys, options: RedisRevocationsOptions) {
    this.#link = link;
    this.#keys = keys;
    this.#logger = options.logger;
  }

  /** Shares the link from here on (a backend whose revocations are never used holds no share). */
  async start(listener: (revocation: Revocation) => void): Promise<void> {
    this.#listener = listener;
    this.#started = true;
    this.#link.acquire();
    await this.#link.connect();
    this.#link.pubsub.on('message', this.#onMessage);
    await this.#catchUp();
    this.#unlisten = this.#link.onChange(() => this.#linkChanged());
  }

  async add(revocation: Revocation): Promise<void> {
    const field = revocationKey(revocation);
    const commands = this.#link.commands;
    for (let attempt = 0; attempt < MAX_PUT_ATTEMPTS; attempt++) {
      const read = (await commands.hget(this.#keys.revocations, field)) ?? '';
      const old = read === '' ? undefined : parseRevocation(JSON.parse(read));
      const entry = old === undefined ? revocation : combineRevocations(old, revocation);
      const json = JSON.stringify(entry);
      const written = await putScript.run(
        commands,
        [this.#keys.revocations, this.#keys.revocationsExpiry],
        [PUT_PURGE_LIMIT, field, read, json, entry.expiresAt ?? '+inf', this.#keys.revocationsPubsub],
      );
      if (written === 1) return;
    }
    throw new Error('revocation kept changing under concurrent writes; try again');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten?.();
    this.#link.pubsub.off('message', this.#onMessage);
    this.#listener = undefined;
    if (this.#started) await this.#link.release();
  }

  /** Subscribes, then reads every entry (subscribing first: nothing stored in between is missed). */
  async #catchUp(): Promise<void> {
    await this.#link.pubsub.subscribe(this.#keys.revocationsPubsub);
    const entries = (await loadScript.run(
      this.#link.commands,
      [this.#keys.revocations, this.#keys.revocationsExpiry],
      [LOAD_PURGE_LIMIT],
    )) as string[];
    for (const text of entries) this.#deliver(text);
    this.#current = true;
  }

  /** Catches up again after the pub/sub connection came back; retries until it worked. */
  #linkChanged(): void {
    if (this.#closed) return;
    if (!this.#link.pubsubReady) {
      this.#current = false;
      return;
    }
    if (this.#current || this.#catchingUp !== undefined || !this.#link.commandsReady) return;
    this.#catchingUp = this.#catchUp().then(
      () => {
        this.#catchingUp = undefined;
        this.#logger.info('revocations read again after a reconnect');
      },
      (error: unknown) => {
        this.#logger.warn({ err: error }, 'reading revocations after a reconnect failed; retrying');
        setTimeout(() => {
          this.#catchingUp = undefined;
          this.#linkChanged();
        }, RETRY_MS).unref();
      },
    );
  }

  #deliver(text: string): void {
    let entry: Revocation | undefined;
    try {
      entry = parseRevocation(JSON.parse(text));
    } catch {
      entry = undefined;
    }
    if (entry === undefined) {
      this.#logger.error('unreadable revocation in redis; ignored');
      return;
    }
    this.#listener?.(entry);
  }
}
