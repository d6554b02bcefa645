/** The push store of one process. Bounded: dedupe marks and rate windows expire and are pruned. */
import type { PushPreferences } from './preferences.js';
import type { PushStore, PushSubscriptionRecord, VapidKeys } from './store.js';

const PRUNE_EVERY = 1024;

export class MemoryPushStore implements PushStore {
  readonly name = 'memory';
  readonly #subs = new Map<string, Map<string, PushSubscriptionRecord>>();
  readonly #owners = new Map<string, string>();
  readonly #prefs = new Map<string, PushPreferences>();
  /** key -> expiry (epoch ms). */
  readonly #claims = new Map<string, number>();
  /** userId -> {window number, count}. */
  readonly #rates = new Map<string, { window: number; count: number; expires: number }>();
  readonly #now: () => number;
  #vapid: VapidKeys | undefined;
  #writes = 0;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  async start(): Promise<void> {}
  async close(): Promise<void> {}

  async addSubscription(userId: string, sub: PushSubscriptionRecord, max: number): Promise<void> {
    const previous = this.#owners.get(sub.id);
    if (previous !== undefined && previous !== userId) this.#subs.get(previous)?.delete(sub.id);
    this.#owners.set(sub.id, userId);
    let subs = this.#subs.get(userId);
    if (subs === undefined) this.#subs.set(userId, (subs = new Map()));
    subs.set(sub.id, sub);
    while (subs.size > max) {
      const oldest = [...subs.values()].filter((s) => s.id !== sub.id).sort((a, b) => a.createdAt - b.createdAt)[0];
      if (oldest === undefined) break;
      subs.delete(oldest.id);
      this.#owners.delete(oldest.id);
    }
  }

  async removeSubscription(userId: string, id: string): Promise<boolean> {
    const subs = this.#subs.get(userId);
    if (subs === undefined || !subs.delete(id)) return false;
    if (subs.size === 0) this.#subs.delete(userId);
    if (this.#owners.get(id) === userId) this.#owners.delete(id);
    return true;
  }

  async listSubscriptions(userId: string): Promise<PushSubscriptionRecord[]> {
    return [...(this.#subs.get(userId)?.values() ?? [])];
  }

  async getPreferences(userId: string): Promise<PushPreferences | undefined> {
    return this.#prefs.get(userId);
  }

  async setPreferences(userId: string, preferences: PushPreferences): Promise<void> {
    this.#prefs.set(userId, preferences);
  }

  async claimOnce(key: string, ttlSeconds: number): Promise<boolean> {
    const now = this.#now();
    this.#prune(now);
    const expires = this.#claims.get(key);
    if (expires !== undefined && expires > now) return false;
    this.#claims.set(key, now + ttlSeconds * 1000);
    return true;
  }

  async takeRateToken(userId: string, limit: number, windowSeconds: number): Promise<boolean> {
    const now = this.#now();
    this.#prune(now);
    const window = Math.floor(now / (windowSeconds * 1000));
    let rate = this.#rates.get(userId);
    if (rate === undefined || rate.window !== window) {
      rate = { window, count: 0, expires: (window + 1) * windowSeconds * 1000 };
      this.#rates.set(userId, rate);
    }
    rate.count++;
    return rate.count <= limit;
  }

  async sharedVapidKeys(candidate: VapidKeys): Promise<VapidKeys> {
    this.#vapid ??= candidate;
    return this.#vapid;
  }

  #prune(now: number): void {
    if (++this.#writes % PRUNE_EVERY !== 0) return;
    for (const [key, expires] of this.#claims) if (expires <= now) this.#claims.delete(key);
    for (const [key, rate] of this.#rates) if (rate.expires <= now) this.#rates.delete(key);
  }
}
