/**
 * Revocations in a NATS KV bucket (`RevocationStore`): one key per user (`u.<user>`) or token id
 * (`t.<jti>`), the entry as JSON. Every node watches the bucket: the watch first delivers every
 * entry (the load at start), then each one stored on any node; nats.js resumes it after a
 * reconnect from where it was, and a watch that ends (a server that lost its storage) is started
 * again from the beginning. Entries survive node restarts, and NATS restarts with file storage.
 *
 * Adding is a compare-and-set on the key's revision (combine, then `update` at the revision read,
 * or `create`), so concurrent revocations of one user cannot lose a `before`.
 *
 * Expiry: with `retentionSeconds` (the hub's maximum token lifetime plus leeways) the bucket
 * drops every entry that long after it was written, which is never before the entry stops
 * mattering. Without it entries stay; nodes ignore the expired ones.
 */
import { combineRevocations, parseRevocation, type Revocation, type RevocationStore } from '@herald/server';
import type { KV, KvEntry, QueuedIterator } from 'nats';
import type { Logger } from 'pino';
import type { NatsLink } from './link.js';
import { token, type NatsNames } from './names.js';
import { WRONG_LAST_SEQUENCE, apiErrorCode, ensureKv, type StorageSettings } from './setup.js';

export interface NatsRevocationsOptions extends StorageSettings {
  /** Seconds the bucket keeps an entry after it was written; 0 = for good. */
  readonly retentionSeconds: number;
  readonly logger: Logger;
}

const MAX_PUT_ATTEMPTS = 10;
const RESTART_MS = 500;
/** JetStream: "wrong last sequence", a compare-and-set that lost. */

export class NatsRevocations implements RevocationStore {
  readonly #link: NatsLink;
  readonly #names: NatsNames;
  readonly #options: NatsRevocationsOptions;
  #listener: ((revocation: Revocation) => void) | undefined;
  #watcher: QueuedIterator<KvEntry> | undefined;
  #kv: Promise<KV> | undefined;
  #started = false;
  #closed = false;

  constructor(link: NatsLink, names: NatsNames, options: NatsRevocationsOptions) {
    this.#link = link;
    this.#names = names;
    this.#options = options;
  }

  /** Shares the link from here on (a backend whose revocations are never used holds no share). */
  async start(listener: (revocation: Revocation) => void): Promise<void> {
    this.#listener = listener;
    this.#started = true;
    this.#link.acquire();
    await this.#link.connect();
    await this.#watch();
  }

  async add(revocation: Revocation): Promise<void> {
    const kv = await this.#bucket();
    const key = keyOf(revocation);
    for (let attempt = 0; attempt < MAX_PUT_ATTEMPTS; attempt++) {
      const current = await kv.get(key);
      const live = current !== null && current.operation === 'PUT';
      const old = live ? readEntry(current) : undefined;
      const json = JSON.stringify(old === undefined ? revocation : combineRevocations(old, revocation));
      try {
        if (current === null) await kv.create(key, json);
        else await kv.update(key, json, current.revision);
        return;
      } catch (error) {
        // Someone wrote the key since it was read (or created it first): read again.
        if (apiErrorCode(error) !== WRONG_LAST_SEQUENCE && !isExistsError(error)) throw error;
      }
    }
    throw new Error('revocation kept changing under concurrent writes; try again');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener = undefined;
    this.#watcher?.stop();
    if (this.#started) await this.#link.release();
  }

  #bucket(): Promise<KV> {
    if (this.#kv === undefined) {
      const { js, jsm } = this.#link.session;
      const kv = ensureKv(js, jsm, this.#names.revocations, this.#options.retentionSeconds * 1000, this.#options);
      this.#kv = kv;
      kv.catch(() => {
        if (this.#kv === kv) this.#kv = undefined;
      });
    }
    return this.#kv;
  }

  /** Resolves once every stored entry was delivered; then follows in the background. */
  async #watch(): Promise<void> {
    const kv = await this.#bucket();
    let initialized!: () => void;
    const ready = new Promise<void>((resolve) => (initialized = resolve));
    const watcher = await kv.watch({ key: '>', initializedFn: () => initialized() });
    this.#watcher = watcher;
    void this.#follow(watcher);
    await ready;
  }

  async #follow(watcher: QueuedIterator<KvEntry>): Promise<void> {
    try {
      for await (const entry of watcher) {
        if (entry.operation !== 'PUT') continue;
        const revocation = readEntry(entry);
        if (revocation === undefined)
          this.#options.logger.error({ key: entry.key }, 'unreadable revocation in nats; ignored');
        else this.#listener?.(revocation);
      }
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'nats revocation watch failed');
    }
    if (this.#closed) return;
    // The watch ended without close(): its stream went (a server that lost its storage). Start
    // again, binding (or creating) the bucket anew; entries come again from the beginning.
    this.#options.logger.warn('nats revocation watch ended; starting it again');
    this.#kv = undefined;
    const restart = (): void => {
      if (this.#closed) return;
      this.#watch().catch((error: unknown) => {
        this.#options.logger.warn({ err: error }, 'restarting the nats revocation watch failed; retrying');
        setTimeout(restart, RESTART_MS).unref();
      });
    };
    setTimeout(restart, RESTART_MS).unref();
  }
}

function keyOf(revocation: Revocation): string {
  return revocation.kind === 'user' ? `u.${token(revocation.userId)}` : `t.${token(revocation.jti)}`;
}

function readEntry(entry: KvEntry): Revocation | undefined {
  try {
    return parseRevocation(JSON.parse(entry.string()));
  } catch {
    return undefined;
  }
}

function isExistsError(error: unknown): boolean {
  return error instanceof Error && /wrong last sequence|key exists/i.test(error.message);
}
