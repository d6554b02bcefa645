/**
 * Pusher apps: `{id, key, secret}` triples, several per hub. The key names the app to clients
 * (`/app/{key}`), the id to the HTTP API (`/apps/{id}/...`), and the secret signs channel and user
 * authorizations, API requests and webhooks. Every app's channels live under a Herald namespace of
 * their own (channels.ts), so apps never see each other's traffic.
 */

export interface PusherApp {
  /** The app id of the HTTP API: 1 to 32 of `A-Z a-z 0-9 _ -`. */
  readonly id: string;
  /** The public key clients connect with: 1 to 64 of `A-Z a-z 0-9 _ -`. */
  readonly key: string;
  /** Signs everything; at least 8 characters. Never logged. */
  readonly secret: string;
  /** Whether clients may send `client-*` events on private and presence channels. Default true. */
  readonly clientEvents?: boolean;
  /** Whether subscribers of public and private channels get `pusher_internal:subscription_count`. Default false. */
  readonly subscriptionCount?: boolean;
  /** Webhooks in Pusher's format (webhooks.ts): where to POST, and which events (default all). */
  readonly webhooks?: { readonly url: string; readonly events?: readonly string[] };
}

import { PUSHER_WEBHOOK_EVENTS } from './webhooks.js';

const ID = /^[A-Za-z0-9_-]{1,32}$/;
const KEY = /^[A-Za-z0-9_-]{1,64}$/;

/** The apps of one hub, found by key (clients) or id (the HTTP API). Validated at start, then frozen. */
export class PusherApps {
  readonly #byKey = new Map<string, PusherApp>();
  readonly #byId = new Map<string, PusherApp>();

  constructor(apps: readonly PusherApp[]) {
    apps.forEach((app, i) => {
      const where = `pusherApps[${i}]`;
      if (typeof app !== 'object' || app === null) throw new TypeError(`Invalid option "${where}": must be an object`);
      if (typeof app.id !== 'string' || !ID.test(app.id)) {
        throw new TypeError(`Invalid option "${where}.id": must be 1 to 32 of A-Z a-z 0-9 _ -`);
      }
      if (typeof app.key !== 'string' || !KEY.test(app.key)) {
        throw new TypeError(`Invalid option "${where}.key": must be 1 to 64 of A-Z a-z 0-9 _ -`);
      }
      if (typeof app.secret !== 'string' || app.secret.length < 8) {
        throw new TypeError(`Invalid option "${where}.secret": must be a string of at least 8 characters`);
      }
      for (const flag of ['clientEvents', 'subscriptionCount'] as const) {
        if (app[flag] !== undefined && typeof app[flag] !== 'boolean') {
          throw new TypeError(`Invalid option "${where}.${flag}": must be a boolean`);
        }
      }
      if (app.webhooks !== undefined) checkWebhooks(app.webhooks, `${where}.webhooks`);
      if (this.#byId.has(app.id)) throw new TypeError(`Invalid option "${where}.id": another app has the same id`);
      if (this.#byKey.has(app.key)) throw new TypeError(`Invalid option "${where}.key": another app has the same key`);
      const frozen = Object.freeze({ ...app });
      this.#byId.set(app.id, frozen);
      this.#byKey.set(app.key, frozen);
    });
  }

  byKey(key: string): PusherApp | undefined {
    return this.#byKey.get(key);
  }

  byId(id: string): PusherApp | undefined {
    return this.#byId.get(id);
  }

  get size(): number {
    return this.#byId.size;
  }

  all(): IterableIterator<PusherApp> {
    return this.#byId.values();
  }
}

function checkWebhooks(webhooks: NonNullable<PusherApp['webhooks']>, where: string): void {
  if (typeof webhooks !== 'object' || webhooks === null)
    throw new TypeError(`Invalid option "${where}": must be an object`);
  if (typeof webhooks.url !== 'string' || !/^https?:\/\/\S+$/.test(webhooks.url)) {
    throw new TypeError(`Invalid option "${where}.url": must be an http(s) URL`);
  }
  const known: readonly string[] = PUSHER_WEBHOOK_EVENTS;
  if (
    webhooks.events !== undefined &&
    (!Array.isArray(webhooks.events) || !webhooks.events.every((e) => known.includes(e)))
  ) {
    throw new TypeError(`Invalid option "${where}.events": a list of ${known.join(', ')}`);
  }
}
