/**
 * The primary's side of the local broker: it owns the machine's one copy of the embedded broker's
 * state (history, offsets and epochs, idempotency keys, presence, revocations, metadata) and
 * serves the hub workers over a unix socket. Every worker is a node of one hub, as Redis nodes
 * are: a publication on any worker gets the next offset of the one stream, and reaches every
 * worker that subscribed to its channel.
 *
 * A worker that goes away (crash, exit) leaves nothing behind: its subscriptions end, and the
 * clients it had put in presence are removed, with a `leave` to the channel's other subscribers.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { ClientInfo } from '@herald/protocol';
import {
  MemoryBroker,
  MemoryPresence,
  TopConflictError,
  combineRevocations,
  revocationKey,
  type ControlMessage,
  type HistoryLimits,
  type HistoryQuery,
  type NodeReplies,
  type NodeRequest,
  type PublicationRecord,
  type PublishDraft,
  type Revocation,
} from '@herald/server';
import { LineWriter, lineReader, type Request, type WireError } from './wire.js';

interface Peer {
  readonly out: LineWriter;
  readonly socket: Socket;
  readonly channels: Set<string>;
  /** channel -> client ids this worker put in presence (removed when it goes away). */
  readonly present: Map<string, Map<string, ClientInfo>>;
  followsRevocations: boolean;
}

export interface LocalBrokerHostOptions extends HistoryLimits {
  /** The unix socket path (or Windows pipe name) workers connect to. */
  readonly path: string;
}

export class LocalBrokerHost {
  readonly path: string;
  readonly #broker: MemoryBroker;
  readonly #presence = new MemoryPresence();
  readonly #revocations = new Map<string, Revocation>();
  readonly #peers = new Set<Peer>();
  /** channel -> workers subscribed to it. */
  readonly #subscribers = new Map<string, Set<Peer>>();
  #server: Server | undefined;
  /** Node requests waiting for the workers' answers. */
  readonly #asking = new Map<number, { answers: unknown[]; waiting: Set<Peer>; done(): void }>();
  #nextAsk = 1;

  constructor(options: LocalBrokerHostOptions) {
    this.path = options.path;
    this.#broker = new MemoryBroker({ size: options.size, ttlSeconds: options.ttlSeconds });
  }

  /** Workers currently connected. */
  get workers(): number {
    return this.#peers.size;
  }

  async start(): Promise<void> {
    await this.#broker.start({
      publication: (record) => this.#fanOut(record),
      control: (message) => this.#routeControl(message),
      readiness: () => undefined,
    });
    if (!this.path.startsWith('\\\\')) {
      mkdirSync(dirname(this.path), { recursive: true });
      rmSync(this.path, { force: true });
    }
    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const peer of this.#peers) peer.socket.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    await this.#broker.close();
  }

  #accept(socket: Socket): void {
    socket.setNoDelay(true);
    const peer: Peer = {
      out: new LineWriter(socket),
      socket,
      channels: new Set(),
      present: new Map(),
      followsRevocations: false,
    };
    this.#peers.add(peer);
    socket.on(
      'data',
      lineReader(
        (message) => void this.#handle(peer, message as Request),
        () => socket.destroy(),
      ),
    );
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#forget(peer));
  }

  async #handle(peer: Peer, request: Request): Promise<void> {
    try {
      const result = await this.#call(peer, request.o, request.a);
      peer.out.send(result === undefined ? { i: request.i } : { i: request.i, r: result });
    } catch (error) {
      const e: WireError =
        error instanceof TopConflictError
          ? { kind: 'top', message: error.message, channel: error.channel }
          : { kind: 'error', message: error instanceof Error ? error.message : String(error) };
      peer.out.send({ i: request.i, e });
    }
  }

  #call(peer: Peer, op: string, a: readonly unknown[]): unknown {
    switch (op) {
      case 'publish':
        return this.#broker.publish(a[0] as PublishDraft);
      case 'subscribe':
        return this.#subscribe(peer, a[0] as string);
      case 'unsubscribe':
        return this.#unsubscribe(peer, a[0] as string);
      case 'history':
        return this.#broker.historyNow(a[0] as string, a[1] as HistoryQuery);
      case 'removeHistory':
        return this.#broker.removeHistory(a[0] as string);
      case 'request':
        return this.#ask(a[0] as NodeRequest, a[1] as number);
      case 'answer':
        return this.#answer(peer, a[0] as number, a[1]);
      case 'broadcast':
        return this.#broker.broadcast(a[0] as ControlMessage);
      case 'presence.add':
        return this.#addPresence(peer, a[0] as string, a[1] as ClientInfo);
      case 'presence.remove':
        return this.#removePresence(peer, a[0] as string, a[1] as string);
      case 'presence.list':
        return this.#presence.list(a[0] as string);
      case 'presence.channels':
        return this.#presence.channels();
      case 'metadata.get':
        return this.#broker.metadata.get(a[0] as string);
      case 'metadata.put':
        return this.#broker.metadata.put(a[0] as string, a[1] as string, optional(a[2]));
      case 'metadata.delete':
        return this.#broker.metadata.delete(a[0] as string, optional(a[1]));
      case 'revocations.start':
        peer.followsRevocations = true;
        return [...this.#revocations.values()];
      case 'revocations.add':
        return this.#addRevocation(a[0] as Revocation);
      default:
        throw new Error(`unknown local broker operation ${op}`);
    }
  }

  async #subscribe(peer: Peer, channel: string): Promise<void> {
    peer.channels.add(channel);
    const peers = this.#subscribers.get(channel);
    if (peers !== undefined) {
      peers.add(peer);
      return;
    }
    this.#subscribers.set(channel, new Set([peer]));
    await this.#broker.subscribe(channel);
  }

  async #unsubscribe(peer: Peer, channel: string): Promise<void> {
    peer.channels.delete(channel);
    const peers = this.#subscribers.get(channel);
    if (peers === undefined) return;
    peers.delete(peer);
    if (peers.size === 0) {
      this.#subscribers.delete(channel);
      await this.#broker.unsubscribe(channel);
    }
  }

  #fanOut(record: PublicationRecord): void {
    const peers = this.#subscribers.get(record.channel);
    if (peers === undefined) return;
    // Serialized once for every worker that takes it.
    const line = { p: record };
    for (const peer of peers) peer.out.send(line);
  }

  #routeControl(message: ControlMessage): void {
    const peers = message.kind === 'disconnect_user' ? this.#peers : this.#subscribers.get(message.channel);
    if (peers === undefined) return;
    for (const peer of peers) peer.out.send({ c: message });
  }

  /** Asks every worker (the asking one included) and gathers their answers, or what came by `timeoutMs`. */
  #ask(message: NodeRequest, timeoutMs: number): Promise<NodeReplies> {
    const id = this.#nextAsk++;
    const peers = new Set(this.#peers);
    return new Promise<NodeReplies>((resolve) => {
      const answers: unknown[] = [];
      const done = (): void => {
        clearTimeout(timer);
        this.#asking.delete(id);
        resolve({ answers, missing: entry.waiting.size });
      };
      const entry = { answers, waiting: peers, done };
      const timer = setTimeout(done, timeoutMs);
      this.#asking.set(id, entry);
      if (peers.size === 0) return done();
      for (const peer of peers) peer.out.send({ q: { id, message } });
    });
  }

  #answer(peer: Peer, id: number, answer: unknown): void {
    const entry = this.#asking.get(id);
    if (entry === undefined || !entry.waiting.delete(peer)) return;
    entry.answers.push(answer ?? null);
    if (entry.waiting.size === 0) entry.done();
  }

  #addPresence(peer: Peer, channel: string, client: ClientInfo): void {
    let clients = peer.present.get(channel);
    if (clients === undefined) peer.present.set(channel, (clients = new Map()));
    clients.set(client.clientId, client);
    this.#presence.addNow(channel, client);
  }

  async #removePresence(peer: Peer, channel: string, clientId: string): Promise<void> {
    const clients = peer.present.get(channel);
    clients?.delete(clientId);
    if (clients?.size === 0) peer.present.delete(channel);
    await this.#presence.remove(channel, clientId);
  }

  #addRevocation(revocation: Revocation): void {
    // Entries past their expiry refuse nothing any more: forget them so the map follows live ones.
    const now = Date.now() / 1000;
    for (const [key, entry] of this.#revocations) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.#revocations.delete(key);
    }
    const key = revocationKey(revocation);
    const old = this.#revocations.get(key);
    const entry = old === undefined ? revocation : combineRevocations(old, revocation);
    this.#revocations.set(key, entry);
    for (const peer of this.#peers) if (peer.followsRevocations) peer.out.send({ v: entry });
  }

  /** A worker went away: its subscriptions end and its clients leave presence, with a `leave`. */
  #forget(peer: Peer): void {
    if (!this.#peers.delete(peer)) return;
    // A request waiting for this worker stops waiting for it (it counts as missing).
    for (const entry of this.#asking.values()) if (entry.waiting.has(peer) && entry.waiting.size === 1) entry.done();
    for (const channel of peer.channels) void this.#unsubscribe(peer, channel);
    for (const [channel, clients] of peer.present) {
      for (const client of clients.values()) {
        void this.#presence.remove(channel, client.clientId);
        this.#routeControl({ kind: 'leave', channel, client });
      }
    }
    peer.present.clear();
  }
}

/** JSON turns an `undefined` argument into `null`: read it back as absent. */
function optional(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}
