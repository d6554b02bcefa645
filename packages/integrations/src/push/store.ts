/**
 * Where push subscriptions, preferences, dedupe marks, rate counters and the shared VAPID key pair
 * live. Memory for one process; Redis or NATS KV to share them between nodes (`push/redis-store.ts`,
 * `push/nats-store.ts`).
 */
import type { PushPreferences } from './preferences.js';

/** A browser's PushSubscription as stored, keyed by a hash of its endpoint. */
export interface PushSubscriptionRecord {
  /** base64url SHA-256 of the endpoint: stable, and says nothing about the endpoint. */
  readonly id: string;
  readonly endpoint: string;
  readonly keys: { readonly p256dh: string; readonly auth: string };
  readonly createdAt: number;
  readonly expirationTime: number | null;
}

export interface VapidKeys {
  /** base64url, uncompressed P-256 point (65 bytes). */
  readonly publicKey: string;
  /** base64url, 32 bytes. */
  readonly privateKey: string;
}

export interface PushStore {
  readonly name: string;
  start(): Promise<void>;
  close(): Promise<void>;
  /**
   * Saves a subscription for `userId`. An endpoint registered by another user moves to this one
   * (a shared browser: the previous user must stop getting pushes there). Keeps at most `max`
   * per user, removing the oldest.
   */
  addSubscription(userId: string, subscription: PushSubscriptionRecord, max: number): Promise<void>;
  /** Removes one of the user's subscriptions; false when the user has none with that id. */
  removeSubscription(userId: string, id: string): Promise<boolean>;
  listSubscriptions(userId: string): Promise<PushSubscriptionRecord[]>;
  getPreferences(userId: string): Promise<PushPreferences | undefined>;
  setPreferences(userId: string, preferences: PushPreferences): Promise<void>;
  /** True for the first claim of `key` within `ttlSeconds`, across every node sharing the store. */
  claimOnce(key: string, ttlSeconds: number): Promise<boolean>;
  /**
   * Counts one push for the user in the current fixed window of `windowSeconds`; true while the
   * count is within `limit`. (A fixed window lets up to twice `limit` through across a boundary.)
   */
  takeRateToken(userId: string, limit: number, windowSeconds: number): Promise<boolean>;
  /** The key pair every node uses: the stored one, or `candidate` if none was stored yet. */
  sharedVapidKeys(candidate: VapidKeys): Promise<VapidKeys>;
}
