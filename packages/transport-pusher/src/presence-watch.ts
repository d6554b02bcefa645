/**
 * Keeps Pusher clients' member lists right when join and leave pushes cannot: a node that dies
 * sends no leave for its members (the presence store drops them after `HERALD_PRESENCE_TTL`), and
 * a join that happens while a subscribe is being answered is not pushed to it. Every
 * `SWEEP_MS`, each presence channel with Pusher subscribers on this node is read once from the
 * cluster-wide presence store, and each of its subscribers compares the list with the members it
 * told its client about (`PusherConnection.reconcile`): one read per channel, whatever its
 * number of local subscribers.
 */
import type { Hub } from '@herald/server';

export const SWEEP_MS = 5_000;

export interface Reconciler {
  reconcile(channel: string, members: ReadonlyMap<string, unknown>): void;
}

export class PresenceWatch {
  readonly #hub: Hub;
  readonly #channels = new Map<string, Set<Reconciler>>();
  readonly #timer: NodeJS.Timeout;
  #sweeping = false;

  constructor(hub: Hub) {
    this.#hub = hub;
    this.#timer = setInterval(() => void this.#sweep(), SWEEP_MS).unref();
  }

  add(channel: string, subscriber: Reconciler): void {
    let set = this.#channels.get(channel);
    if (set === undefined) this.#channels.set(channel, (set = new Set()));
    set.add(subscriber);
  }

  remove(channel: string, subscriber: Reconciler): void {
    const set = this.#channels.get(channel);
    if (set?.delete(subscriber) === true && set.size === 0) this.#channels.delete(channel);
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      for (const [channel, subscribers] of [...this.#channels]) {
        let members: Map<string, unknown>;
        try {
          members = new Map();
          for (const client of await this.#hub.presence(channel)) {
            if (client.userId !== '' && !members.has(client.userId)) members.set(client.userId, client.info ?? null);
          }
        } catch {
          continue; // the broker is away: nothing is concluded from an unread list
        }
        for (const subscriber of subscribers) subscriber.reconcile(channel, members);
      }
    } finally {
      this.#sweeping = false;
    }
  }
}
