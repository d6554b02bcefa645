/**
 * The worker's side of the local broker: `Broker`, `PresenceStore`, `RevocationStore` and
 * `MetadataStore` over one link to the primary, which holds the state (host.ts). Each worker is a
 * node of the hub, so the core treats it as it treats a Redis node: publish and history go to the
 * shared store, publications come back for the channels this worker subscribed to.
 */
import type { ClientInfo } from '@herald/protocol';
import { holdTurnFor } from '@herald/server';
import type {
  Broker,
  BrokerEvents,
  ChannelCount,
  ControlMessage,
  HistoryQuery,
  HistoryResult,
  MetadataEntry,
  MetadataStore,
  NodeReplies,
  NodeRequest,
  PresenceStore,
  PublishDraft,
  PublishResult,
  Revocation,
  RevocationStore,
} from '@herald/server';
import type { LocalLink } from './link.js';

export class LocalBroker implements Broker {
  readonly name = 'local';
  readonly metadata: MetadataStore;
  readonly #link: LocalLink;
  #events: BrokerEvents | undefined;

  constructor(link: LocalLink) {
    this.#link = link;
    this.metadata = new LocalMetadata(link);
  }

  get ready(): boolean {
    return this.#events !== undefined && this.#link.up;
  }

  async start(events: BrokerEvents): Promise<void> {
    this.#events = events;
    await this.#link.open({
      push: (message) => {
        if ('p' in message) this.#events?.publication(message.p);
        else if ('c' in message) this.#events?.control(message.c);
        else if ('q' in message) void this.#answer(message.q.id, message.q.message);
      },
      lost: () => this.#events?.readiness(false),
    });
  }

  async close(): Promise<void> {
    this.#events = undefined;
    this.#link.close();
  }

  publish(draft: PublishDraft): Promise<PublishResult> {
    // The primary answers within microseconds, the publication first: the turn that forwarded
    // the publish waits for it, so the publication leaves in that turn's writes (turn-batch.ts).
    const released = holdTurnFor();
    const reply = this.#link.call<PublishResult>('publish', draft);
    reply.then(released, released);
    return reply;
  }

  subscribe(channel: string): Promise<void> {
    return this.#link.call('subscribe', channel);
  }

  unsubscribe(channel: string): Promise<void> {
    return this.#link.call('unsubscribe', channel);
  }

  history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    return this.#link.call('history', channel, query);
  }

  broadcast(message: ControlMessage): Promise<void> {
    return this.#link.call('broadcast', message);
  }

  request(message: NodeRequest, timeoutMs: number): Promise<NodeReplies> {
    return this.#link.call('request', message, timeoutMs);
  }

  removeHistory(channel: string): Promise<void> {
    return this.#link.call('removeHistory', channel);
  }

  /** Answers a node request with this worker's hub (`null` when it has no answer or fails). */
  async #answer(id: number, message: NodeRequest): Promise<void> {
    const ask = this.#events?.request;
    const answer = ask === undefined ? null : await ask.call(this.#events, message).catch(() => null);
    await this.#link.call('answer', id, answer ?? null).catch(() => undefined);
  }
}

export class LocalPresence implements PresenceStore {
  readonly #link: LocalLink;

  constructor(link: LocalLink) {
    this.#link = link;
  }

  add(channel: string, client: ClientInfo): Promise<void> {
    return this.#link.call('presence.add', channel, client);
  }

  remove(channel: string, clientId: string): Promise<void> {
    return this.#link.call('presence.remove', channel, clientId);
  }

  list(channel: string): Promise<ClientInfo[]> {
    return this.#link.call('presence.list', channel);
  }

  channels(): Promise<ChannelCount[]> {
    return this.#link.call('presence.channels');
  }

  async close(): Promise<void> {
    // The link is the broker's: it closes with the broker.
  }
}

export class LocalRevocations implements RevocationStore {
  readonly #link: LocalLink;
  #listener: ((revocation: Revocation) => void) | undefined;

  constructor(link: LocalLink) {
    this.#link = link;
  }

  async start(listener: (revocation: Revocation) => void): Promise<void> {
    this.#listener = listener;
    await this.#link.open({
      push: (message) => {
        if ('v' in message) this.#listener?.(message.v);
      },
      lost: () => undefined,
    });
    for (const entry of await this.#link.call<Revocation[]>('revocations.start')) listener(entry);
  }

  add(revocation: Revocation): Promise<void> {
    return this.#link.call('revocations.add', revocation);
  }

  async close(): Promise<void> {
    this.#listener = undefined;
  }
}

class LocalMetadata implements MetadataStore {
  readonly #link: LocalLink;

  constructor(link: LocalLink) {
    this.#link = link;
  }

  async get(key: string): Promise<MetadataEntry | undefined> {
    return (await this.#link.call<MetadataEntry | null | undefined>('metadata.get', key)) ?? undefined;
  }

  async put(key: string, value: string, expected?: number): Promise<number | undefined> {
    return (await this.#link.call<number | null | undefined>('metadata.put', key, value, expected)) ?? undefined;
  }

  delete(key: string, expected?: number): Promise<boolean> {
    return this.#link.call('metadata.delete', key, expected);
  }
}
