/**
 * The push store on NATS JetStream KV, for nats:// deployments: what the Redis store keeps, with a
 * compare-and-set on one key at a time where Redis runs a script (`nats-kv.ts`). nats-server 2.9
 * has no per-key TTL, so what expires lives in buckets whose max age is that TTL, one per TTL.
 * Buckets (`bucket` default `herald_push`) and keys, users and ids base64url-encoded:
 *   <bucket>                   s.<id>       {user, sub}: the subscription and the user holding it
 *                              u.<user>     [[id, createdAt], ...]: the user's subscriptions
 *                              p.<user>     JSON preferences
 *                              vapid        JSON key pair, created once: the first node's pair wins
 *   <bucket>_once_<ttl>s       <key>        dedupe marks: `create` fails while one is there
 *   <bucket>_rate_<window>s    <user>.<w>   count of fixed window w (max age two windows)
 *
 * A subscription and its users' lists are three keys, so registering updates them in an order
 * that converges when two users register one endpoint at once: the subscription first (the CAS
 * says who held it), then the new holder's list, then the previous holder's list loses the id,
 * getting it back if that user took the endpoint again meanwhile. Listing keeps only ids whose
 * subscription names the user, so a list that is briefly stale never sends one user's push to
 * another user's browser.
 */
import { connect, type KV, type NatsConnection } from 'nats';
import { isKvConflict, jsonBytes, kvJson, kvSegment, kvUpdate } from '../nats-kv.js';
import type { PushPreferences } from './preferences.js';
import type { PushStore, PushSubscriptionRecord, VapidKeys } from './store.js';

export interface NatsPushStoreOptions {
  /** `nats://host:port` (several may be given comma-separated). */
  readonly url: string;
  /** Name of the main KV bucket and prefix of the expiring ones. Default `herald_push`. */
  readonly bucket?: string;
}

/** A subscription with the user it belongs to. */
interface Held {
  readonly user: string;
  readonly sub: PushSubscriptionRecord;
}

/** One user's subscription ids with their creation time (what eviction goes by), oldest first. */
type UserIndex = ReadonlyArray<readonly [id: string, createdAt: number]>;

const subKey = (id: string): string => `s.${kvSegment(id)}`;
const indexKey = (user: string): string => `u.${kvSegment(user)}`;

export class NatsPushStore implements PushStore {
  readonly name = 'nats';
  readonly #url: string;
  readonly #bucket: string;
  readonly #expiring = new Map<string, Promise<KV>>();
  #nc: NatsConnection | undefined;
  #kv: KV | undefined;

  constructor(options: NatsPushStoreOptions) {
    this.#url = options.url;
    this.#bucket = options.bucket ?? 'herald_push';
  }

  get #main(): KV {
    if (this.#kv === undefined) throw new Error('the NATS push store is not started');
    return this.#kv;
  }

  async start(): Promise<void> {
    this.#nc = await connect({ servers: this.#url.split(','), name: 'herald-push-store' });
    this.#kv = await this.#nc.jetstream().views.kv(this.#bucket, { history: 1 });
  }

  async close(): Promise<void> {
    const nc = this.#nc;
    if (nc === undefined || nc.isClosed()) return;
    await nc.drain().catch(() => undefined);
    await nc.close();
  }

  async addSubscription(userId: string, sub: PushSubscriptionRecord, max: number): Promise<void> {
    const { before } = await kvUpdate<Held>(this.#main, subKey(sub.id), () => ({ user: userId, sub }));
    const evicted = await this.#index(userId, sub, max);
    if (before !== undefined && before.user !== userId) await this.#unindex(before.user, sub.id);
    for (const id of evicted) await this.#deleteHeld(id, userId);
  }

  async removeSubscription(userId: string, id: string): Promise<boolean> {
    const removed = await this.#deleteHeld(id, userId);
    await kvUpdate<UserIndex>(this.#main, indexKey(userId), (cur) => without(cur, id));
    return removed;
  }

  async listSubscriptions(userId: string): Promise<PushSubscriptionRecord[]> {
    const kv = this.#main;
    const index = (await kvJson<UserIndex>(kv, indexKey(userId))) ?? [];
    const held = await Promise.all(index.map(([id]) => kvJson<Held>(kv, subKey(id))));
    return held.filter((h): h is Held => h?.user === userId).map((h) => h.sub);
  }

  async getPreferences(userId: string): Promise<PushPreferences | undefined> {
    return kvJson<PushPreferences>(this.#main, `p.${kvSegment(userId)}`);
  }

  async setPreferences(userId: string, preferences: PushPreferences): Promise<void> {
    await this.#main.put(`p.${kvSegment(userId)}`, jsonBytes(preferences));
  }

  async claimOnce(key: string, ttlSeconds: number): Promise<boolean> {
    const kv = await this.#expiringBucket('once', ttlSeconds, ttlSeconds);
    try {
      await kv.create(kvSegment(key), new Uint8Array());
      return true;
    } catch (error) {
      if (isKvConflict(error)) return false;
      throw error;
    }
  }

  async takeRateToken(userId: string, limit: number, windowSeconds: number): Promise<boolean> {
    const kv = await this.#expiringBucket('rate', windowSeconds, windowSeconds * 2);
    const window = Math.floor(Date.now() / (windowSeconds * 1000));
    let allowed = false;
    // Past the limit the count stays put: the answer is the same, and a flood writes nothing.
    await kvUpdate<number>(kv, `${kvSegment(userId)}.${window}`, (count = 0) => {
      allowed = count < limit;
      return allowed ? count + 1 : count;
    });
    return allowed;
  }

  async sharedVapidKeys(candidate: VapidKeys): Promise<VapidKeys> {
    try {
      await this.#main.create('vapid', jsonBytes(candidate));
      return candidate;
    } catch (error) {
      if (!isKvConflict(error)) throw error;
    }
    return (await kvJson<VapidKeys>(this.#main, 'vapid')) ?? candidate;
  }

  /** Adds the subscription to the user's list, dropping the oldest others past `max`; returns those. */
  async #index(userId: string, sub: PushSubscriptionRecord, max: number): Promise<string[]> {
    let evicted: string[] = [];
    await kvUpdate<UserIndex>(this.#main, indexKey(userId), (cur) => {
      const next = [...(cur ?? []).filter(([id]) => id !== sub.id), [sub.id, sub.createdAt] as const];
      evicted = [];
      while (next.length > max) {
        const others = next.filter(([id]) => id !== sub.id);
        if (others.length === 0) break;
        const oldest = others.reduce((a, b) => (b[1] < a[1] ? b : a));
        next.splice(next.indexOf(oldest), 1);
        evicted.push(oldest[0]);
      }
      return next;
    });
    return evicted;
  }

  /** Takes `id` off a user who no longer holds it, unless that user took it back meanwhile. */
  async #unindex(userId: string, id: string): Promise<void> {
    await kvUpdate<UserIndex>(this.#main, indexKey(userId), (cur) => without(cur, id));
    const held = await kvJson<Held>(this.#main, subKey(id));
    if (held?.user === userId) await this.#index(userId, held.sub, Number.POSITIVE_INFINITY);
  }

  /** Deletes the subscription if `userId` holds it; true when this call deleted it. */
  async #deleteHeld(id: string, userId: string): Promise<boolean> {
    const { before, after } = await kvUpdate<Held>(this.#main, subKey(id), (cur) =>
      cur?.user === userId ? undefined : cur,
    );
    return before?.user === userId && after === undefined;
  }

  /**
   * The bucket of one purpose and TTL, created on first use: its max age is what expires the
   * keys, as nats-server 2.9 has no per-key TTL. Callers use one TTL per purpose, so one bucket.
   */
  #expiringBucket(purpose: 'once' | 'rate', seconds: number, maxAgeSeconds: number): Promise<KV> {
    if (!Number.isInteger(seconds) || seconds <= 0) {
      throw new RangeError(`push store ${purpose} TTL must be a whole number of seconds, got ${seconds}`);
    }
    const name = `${this.#bucket}_${purpose}_${seconds}s`;
    let bucket = this.#expiring.get(name);
    if (bucket === undefined) {
      const nc = this.#nc;
      if (nc === undefined) throw new Error('the NATS push store is not started');
      bucket = nc.jetstream().views.kv(name, { history: 1, ttl: maxAgeSeconds * 1000 });
      bucket.catch(() => this.#expiring.delete(name)); // a failure is not remembered: the next call retries
      this.#expiring.set(name, bucket);
    }
    return bucket;
  }
}

/** The list without `id`; undefined (the key deleted) when nothing is left. */
function without(index: UserIndex | undefined, id: string): UserIndex | undefined {
  if (index === undefined || !index.some(([i]) => i === id)) return index;
  const rest = index.filter(([i]) => i !== id);
  return rest.length === 0 ? undefined : rest;
}
