/**
 * Presence in a NATS KV bucket whose entries expire `ttlSeconds` after they were written. Each
 * node writes its own clients again every third of the ttl; when a node dies its entries are
 * gone at most `ttlSeconds` after its last refresh, so within `ttlSeconds` of the death (JetStream
 * expires them on the server's clock). The refresh also restores entries of a server that
 * restarted without its storage, and runs right after every reconnect.
 */
import type { ClientInfo } from '@herald/protocol';
import type { ChannelCount, PresenceStore } from '@herald/server';
import { KvWatchInclude, type KV, type KvEntry } from 'nats';
import type { Logger } from 'pino';
import type { NatsLink } from './link.js';
import { token, untoken, type NatsNames } from './names.js';
import { ensureKv, type StorageSettings } from './setup.js';

export interface NatsPresenceOptions extends StorageSettings {
  readonly ttlSeconds: number;
  readonly logger: Logger;
}

export class NatsPresence implements PresenceStore {
  readonly #link: NatsLink;
  readonly #names: NatsNames;
  readonly #options: NatsPresenceOptions;
  /** This node's entries: channel → clientId → ClientInfo JSON. */
  readonly #local = new Map<string, Map<string, string>>();
  readonly #timer: NodeJS.Timeout;
  readonly #unlisten: () => void;
  #kv: Promise<KV> | undefined;
  /** Writes not answered yet: `close` lets them finish before the connection goes. */
  readonly #inflight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(link: NatsLink, names: NatsNames, options: NatsPresenceOptions) {
    this.#link = link;
    this.#names = names;
    this.#options = options;
    link.acquire();
    const every = Math.max(100, Math.floor((options.ttlSeconds * 1000) / 3));
    this.#timer = setInterval(() => void this.#refresh(), every).unref();
    this.#unlisten = link.onChange((connected) => {
      if (!connected) return;
      // The bucket may have gone with the server's storage: bind (or create) it again.
      this.#kv = undefined;
      void this.#refresh();
    });
  }

  async add(channel: string, client: ClientInfo): Promise<void> {
    const json = JSON.stringify(client);
    let clients = this.#local.get(channel);
    if (clients === undefined) this.#local.set(channel, (clients = new Map()));
    clients.set(client.clientId, json);
    await this.#track(this.#bucket().then((kv) => kv.put(key(channel, client.clientId), json)));
  }

  async remove(channel: string, clientId: string): Promise<void> {
    const clients = this.#local.get(channel);
    clients?.delete(clientId);
    if (clients?.size === 0) this.#local.delete(channel);
    await this.#track(this.#bucket().then((kv) => kv.delete(key(channel, clientId))));
  }

  async list(channel: string): Promise<ClientInfo[]> {
    const entries = await this.#read(`${token(channel)}.*`, false);
    return [...entries.values()].map((e) => JSON.parse(e.string()) as ClientInfo);
  }

  async channels(): Promise<ChannelCount[]> {
    const counts = new Map<string, number>();
    for (const k of (await this.#read('>', true)).keys()) {
      const channelToken = k.slice(0, k.indexOf('.'));
      counts.set(channelToken, (counts.get(channelToken) ?? 0) + 1);
    }
    return [...counts].map(([t, subscribers]) => ({ channel: untoken(t), subscribers }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#unlisten();
    if (this.#link.connected) {
      const removals: Promise<unknown>[] = [];
      for (const [channel, clients] of this.#local) {
        for (const clientId of clients.keys()) removals.push(this.remove(channel, clientId).catch(() => undefined));
      }
      await Promise.all(removals);
    }
    await Promise.allSettled([...this.#inflight]);
    this.#local.clear();
    await this.#link.release();
  }

  async #track<T>(operation: Promise<T>): Promise<T> {
    this.#inflight.add(operation);
    try {
      return await operation;
    } finally {
      this.#inflight.delete(operation);
    }
  }

  #bucket(): Promise<KV> {
    if (this.#kv === undefined) {
      const { js, jsm } = this.#link.session;
      const kv = ensureKv(js, jsm, this.#names.presence, this.#options.ttlSeconds * 1000, this.#options);
      this.#kv = kv;
      kv.catch(() => {
        if (this.#kv === kv) this.#kv = undefined;
      });
    }
    return this.#kv;
  }

  /** The current entries under a key filter: a watcher that stops once it delivered them all. */
  async #read(filter: string, headersOnly: boolean): Promise<Map<string, KvEntry>> {
    const kv = await this.#bucket();
    const entries = new Map<string, KvEntry>();
    // `initializedFn` runs after the last initial entry, or during `watch` itself when there is none.
    const done: { initialized: boolean; stop?: () => void } = { initialized: false };
    const watcher = await kv.watch({
      key: filter,
      include: KvWatchInclude.LastValue,
      headers_only: headersOnly,
      initializedFn: () => {
        done.initialized = true;
        done.stop?.();
      },
    });
    done.stop = () => watcher.stop();
    if (done.initialized) watcher.stop();
    for await (const entry of watcher) {
      if (entry.operation === 'PUT') entries.set(entry.key, entry);
      else entries.delete(entry.key);
    }
    return entries;
  }

  async #refresh(): Promise<void> {
    if (this.#closed || !this.#link.connected || this.#local.size === 0) return;
    try {
      const kv = await this.#bucket();
      const writes: Promise<unknown>[] = [];
      for (const [channel, clients] of this.#local) {
        for (const [clientId, json] of clients) writes.push(kv.put(key(channel, clientId), json));
      }
      const failed = (await Promise.allSettled(writes)).filter((r) => r.status === 'rejected').length;
      if (failed > 0) this.#options.logger.warn({ failed }, 'presence refresh failed for some clients');
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'presence refresh failed');
    }
  }
}

function key(channel: string, clientId: string): string {
  return `${token(channel)}.${token(clientId)}`;
}
