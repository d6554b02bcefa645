/** Presence kept in this process: the embedded default, exact and immediate. */
import type { ClientInfo } from '@herald/protocol';
import type { ChannelCount, PresenceStore } from '../broker/broker.js';

export class MemoryPresence implements PresenceStore {
  readonly #channels = new Map<string, Map<string, ClientInfo>>();

  async add(channel: string, client: ClientInfo): Promise<void> {
    this.addNow(channel, client);
  }

  addNow(channel: string, client: ClientInfo): void {
    let clients = this.#channels.get(channel);
    if (clients === undefined) this.#channels.set(channel, (clients = new Map()));
    clients.set(client.clientId, client);
  }

  async remove(channel: string, clientId: string): Promise<void> {
    const clients = this.#channels.get(channel);
    if (clients === undefined) return;
    clients.delete(clientId);
    if (clients.size === 0) this.#channels.delete(channel);
  }

  async list(channel: string): Promise<ClientInfo[]> {
    return [...(this.#channels.get(channel)?.values() ?? [])];
  }

  async channels(): Promise<ChannelCount[]> {
    return [...this.#channels].map(([channel, clients]) => ({ channel, subscribers: clients.size }));
  }

  async close(): Promise<void> {
    this.#channels.clear();
  }
}
