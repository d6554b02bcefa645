/**
 * Presence shared by every node on the Redis: per channel a hash (clientId → ClientInfo) and a
 * sorted set of expiry times. A node refreshes the expiry of its own clients every third of the
 * ttl; when a node dies its entries stop being refreshed and disappear from `list` and `channels`
 * at most `ttlSeconds` after its last refresh, so within `ttlSeconds` of the death. Expiry uses the
 * Redis clock. Entries of a node that was cut off longer than the ttl come back with its next
 * refresh, which also runs right after every reconnect (a restarted Redis has forgotten them all).
 */
import type { ClientInfo } from '@herald/protocol';
import type { ChannelCount, PresenceStore } from '@herald/server';
import type { Logger } from 'pino';
import type { RedisKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { PRESENCE_CHANNELS, PRESENCE_LIST, PRESENCE_PUT, PRESENCE_REMOVE, Script } from './scripts.js';

export interface RedisPresenceOptions {
  /** Seconds an entry outlives its node's last refresh. */
  readonly ttlSeconds: number;
  readonly logger: Logger;
}

const putScript = new Script(PRESENCE_PUT);
const removeScript = new Script(PRESENCE_REMOVE);
const listScript = new Script(PRESENCE_LIST);
const channelsScript = new Script(PRESENCE_CHANNELS);
/** Entries written per script call when refreshing, so no call blocks Redis for long. */
const REFRESH_BATCH = 256;

export class RedisPresence implements PresenceStore {
  readonly #link: RedisLink;
  readonly #keys: RedisKeys;
  readonly #options: RedisPresenceOptions;
  /** This node's entries: channel → clientId → ClientInfo JSON. */
  readonly #local = new Map<string, Map<string, string>>();
  readonly #timer: NodeJS.Timeout;
  readonly #unlisten: () => void;
  #wasReady = false;
  #closed = false;

  constructor(link: RedisLink, keys: RedisKeys, options: RedisPresenceOptions) {
    this.#link = link;
    this.#keys = keys;
    this.#options = options;
    link.acquire();
    const every = Math.max(100, Math.floor((options.ttlSeconds * 1000) / 3));
    this.#timer = setInterval(() => void this.#refresh(), every).unref();
    this.#unlisten = link.onChange(() => {
      const ready = link.commandsReady;
      if (ready && !this.#wasReady) void this.#refresh();
      this.#wasReady = ready;
    });
  }

  async add(channel: string, client: ClientInfo): Promise<void> {
    const json = JSON.stringify(client);
    let clients = this.#local.get(channel);
    if (clients === undefined) this.#local.set(channel, (clients = new Map()));
    clients.set(client.clientId, json);
    await this.#put(channel, [client.clientId, json]);
  }

  async remove(channel: string, clientId: string): Promise<void> {
    const clients = this.#local.get(channel);
    clients?.delete(clientId);
    if (clients?.size === 0) this.#local.delete(channel);
    await removeScript.run(
      this.#link.commands,
      [this.#keys.presence(channel), this.#keys.presenceExpiry(channel)],
      [clientId],
    );
  }

  async list(channel: string): Promise<ClientInfo[]> {
    const entries = (await listScript.run(
      this.#link.commands,
      [this.#keys.presence(channel), this.#keys.presenceExpiry(channel)],
      [],
    )) as string[];
    return entries.map((json) => JSON.parse(json) as ClientInfo);
  }

  async channels(): Promise<ChannelCount[]> {
    const reply = (await channelsScript.run(this.#link.commands, [this.#keys.presenceIndex], [this.#keys.prefix])) as (
      string | number
    )[];
    const counts: ChannelCount[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      counts.push({ channel: String(reply[i]), subscribers: Number(reply[i + 1]) });
    }
    return counts;
  }

  /** Removes what is left of this node's entries (best effort), then lets go of the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#unlisten();
    if (this.#link.commandsReady) {
      const removals: Promise<unknown>[] = [];
      for (const [channel, clients] of this.#local) {
        for (const clientId of clients.keys()) removals.push(this.remove(channel, clientId).catch(() => undefined));
      }
      await Promise.all(removals);
    }
    this.#local.clear();
    await this.#link.release();
  }

  #put(channel: string, pairs: readonly string[]): Promise<unknown> {
    return putScript.run(
      this.#link.commands,
      [this.#keys.presence(channel), this.#keys.presenceExpiry(channel), this.#keys.presenceIndex],
      [this.#options.ttlSeconds * 1000, channel, ...pairs],
    );
  }

  /** Pushes the expiry of every local entry forward (and writes back any Redis forgot). */
  async #refresh(): Promise<void> {
    if (this.#closed || !this.#link.commandsReady) return;
    const writes: Promise<unknown>[] = [];
    for (const [channel, clients] of this.#local) {
      let pairs: string[] = [];
      for (const [clientId, json] of clients) {
        pairs.push(clientId, json);
        if (pairs.length >= REFRESH_BATCH * 2) {
          writes.push(this.#put(channel, pairs));
          pairs = [];
        }
      }
      if (pairs.length > 0) writes.push(this.#put(channel, pairs));
    }
    const results = await Promise.allSettled(writes);
    const failed = results.filter((r) => r.status === 'rejected').length;
    if (failed > 0) this.#options.logger.warn({ failed }, 'presence refresh failed for some channels');
  }
}
