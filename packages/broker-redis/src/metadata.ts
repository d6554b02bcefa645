/**
 * The metadata store on Redis: one hash per key (`v` version, `d` value), written by scripts so
 * that the version check and the write are one step. Versions come from one counter per prefix,
 * so a key deleted and written again never shows a version a client may still hold.
 * Like the presence index, it names keys outside one hash slot: standalone Redis, not Cluster.
 */
import type { MetadataEntry, MetadataStore } from '@herald/server';
import type { RedisKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { Script } from './scripts.js';

/** KEYS: entry, counter. ARGV: value, expected version ('' for any). Returns the new version, or -1. */
const PUT = new Script(`local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= current then return -1 end
local v = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'v', v, 'd', ARGV[1])
return v`);

/** KEYS: entry. ARGV: expected version ('' for any). Returns 1 when it deleted the entry. */
const DELETE = new Script(`local current = redis.call('HGET', KEYS[1], 'v')
if not current then return 0 end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= tonumber(current) then return 0 end
redis.call('DEL', KEYS[1])
return 1`);

export class RedisMetadata implements MetadataStore {
  readonly #link: RedisLink;
  readonly #keys: RedisKeys;

  constructor(link: RedisLink, keys: RedisKeys) {
    this.#link = link;
    this.#keys = keys;
  }

  async get(key: string): Promise<MetadataEntry | undefined> {
    const [version, value] = await this.#link.commands.hmget(this.#keys.metadata(key), 'v', 'd');
    if (typeof version !== 'string' || typeof value !== 'string') return undefined;
    return { value, version: Number(version) };
  }

  async put(key: string, value: string, expected?: number): Promise<number | undefined> {
    const version = (await PUT.run(
      this.#link.commands,
      [this.#keys.metadata(key), this.#keys.metadataVersion],
      [value, expected ?? ''],
    )) as number;
    return version < 0 ? undefined : version;
  }

  async delete(key: string, expected?: number): Promise<boolean> {
    return (await DELETE.run(this.#link.commands, [this.#keys.metadata(key)], [expected ?? ''])) === 1;
  }
}
