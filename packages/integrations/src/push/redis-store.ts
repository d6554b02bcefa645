/**
 * The push store on Redis, shared by every node. Keys under `prefix`:
 *   subs:<user>        HASH subscription id -> JSON record
 *   owner:<id>         STRING user holding the subscription (so an endpoint moves between users)
 *   prefs:<user>       STRING JSON preferences
 *   once:<key>         STRING, SET NX EX: publication dedupe
 *   rate:<user>:<w>    counter of fixed window w, expiring with it
 *   vapid              STRING JSON key pair, SET NX: first node's pair wins
 */
import { Redis } from 'ioredis';
import type { PushPreferences } from './preferences.js';
import type { PushStore, PushSubscriptionRecord, VapidKeys } from './store.js';

/** ARGV: prefix, user, id, json, max. Moves the endpoint from another user, evicts the oldest past max. */
const ADD = `
local p, user, id = ARGV[1], ARGV[2], ARGV[3]
local ownerKey = p .. 'owner:' .. id
local previous = redis.call('GET', ownerKey)
if previous and previous ~= user then redis.call('HDEL', p .. 'subs:' .. previous, id) end
redis.call('SET', ownerKey, user)
local subs = p .. 'subs:' .. user
redis.call('HSET', subs, id, ARGV[4])
local max = tonumber(ARGV[5])
while redis.call('HLEN', subs) > max do
  local all = redis.call('HGETALL', subs)
  local oldestId, oldestAt = nil, nil
  for i = 1, #all, 2 do
    local at = cjson.decode(all[i + 1]).createdAt
    if all[i] ~= id and (oldestAt == nil or at < oldestAt) then oldestId, oldestAt = all[i], at end
  end
  if oldestId == nil then break end
  redis.call('HDEL', subs, oldestId)
  if redis.call('GET', p .. 'owner:' .. oldestId) == user then redis.call('DEL', p .. 'owner:' .. oldestId) end
end
return 0`;

/** ARGV: prefix, user, id. */
const REMOVE = `
local p, user, id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HDEL', p .. 'subs:' .. user, id) == 0 then return 0 end
if redis.call('GET', p .. 'owner:' .. id) == user then redis.call('DEL', p .. 'owner:' .. id) end
return 1`;

export interface RedisPushStoreOptions {
  readonly url: string;
  /** Default `herald:push:`. */
  readonly prefix?: string;
}

export class RedisPushStore implements PushStore {
  readonly name = 'redis';
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: RedisPushStoreOptions) {
    this.#prefix = options.prefix ?? 'herald:push:';
    this.#redis = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.#redis.on('error', () => undefined); // reconnects by itself; failed calls reject to the caller
    this.#redis.defineCommand('heraldPushAdd', { numberOfKeys: 0, lua: ADD });
    this.#redis.defineCommand('heraldPushRemove', { numberOfKeys: 0, lua: REMOVE });
  }

  #script(name: 'heraldPushAdd' | 'heraldPushRemove', ...args: Array<string | number>): Promise<unknown> {
    const fn = (this.#redis as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[name];
    return (fn as (...a: Array<string | number>) => Promise<unknown>).call(this.#redis, this.#prefix, ...args);
  }

  async start(): Promise<void> {
    await this.#redis.connect();
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => undefined);
    this.#redis.disconnect();
  }

  async addSubscription(userId: string, sub: PushSubscriptionRecord, max: number): Promise<void> {
    await this.#script('heraldPushAdd', userId, sub.id, JSON.stringify(sub), max);
  }

  async removeSubscription(userId: string, id: string): Promise<boolean> {
    return (await this.#script('heraldPushRemove', userId, id)) === 1;
  }

  async listSubscriptions(userId: string): Promise<PushSubscriptionRecord[]> {
    const all = await this.#redis.hvals(`${this.#prefix}subs:${userId}`);
    return all.map((json) => JSON.parse(json) as PushSubscriptionRecord);
  }

  async getPreferences(userId: string): Promise<PushPreferences | undefined> {
    const json = await this.#redis.get(`${this.#prefix}prefs:${userId}`);
    return json === null ? undefined : (JSON.parse(json) as PushPreferences);
  }

  async setPreferences(userId: string, preferences: PushPreferences): Promise<void> {
    await this.#redis.set(`${this.#prefix}prefs:${userId}`, JSON.stringify(preferences));
  }

  async claimOnce(key: string, ttlSeconds: number): Promise<boolean> {
    return (await this.#redis.set(`${this.#prefix}once:${key}`, '1', 'EX', ttlSeconds, 'NX')) === 'OK';
  }

  async takeRateToken(userId: string, limit: number, windowSeconds: number): Promise<boolean> {
    const window = Math.floor(Date.now() / (windowSeconds * 1000));
    const key = `${this.#prefix}rate:${userId}:${window}`;
    const [[, count]] = (await this.#redis
      .multi()
      .incr(key)
      .expire(key, windowSeconds * 2)
      .exec()) as [[Error | null, number]];
    return count <= limit;
  }

  async sharedVapidKeys(candidate: VapidKeys): Promise<VapidKeys> {
    const key = `${this.#prefix}vapid`;
    await this.#redis.set(key, JSON.stringify(candidate), 'NX');
    const stored = await this.#redis.get(key);
    return stored === null ? candidate : (JSON.parse(stored) as VapidKeys);
  }
}
