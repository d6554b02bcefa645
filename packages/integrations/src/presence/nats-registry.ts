/**
 * The connection registry on a NATS JetStream key-value bucket, for nats:// deployments. KV has
 * no scripts, so every change is a compare-and-set on one key (retried on a conflict): the node
 * whose write takes an id up, or deletes a due id, is the one that announces the transition.
 *
 * Keys (ids are base64url-encoded, as KV keys allow few characters):
 *   node.<node>              {"at": ms}: heartbeat
 *   m.<kind>.<id>            {"nodes": [...], "up": bool, "due"?: ms}
 *   d.<kind>.<id>            marker: a down transition is scheduled (so sweeps list only those)
 *   h.<node>.<kind>.<id>     marker: the node holds the id (to clean up after a dead node)
 * Time is each node's clock: clocks that disagree by a second shift the delays by as much.
 */
import { randomUUID } from 'node:crypto';
import { connect, type KV, type KvEntry, type NatsConnection } from 'nats';
import { jsonBytes, kvUpdate } from '../nats-kv.js';
import {
  TRACKED_KINDS,
  type CloseOptions,
  type ConnectionRegistry,
  type RegistryTiming,
  type TrackedKind,
  type Transition,
} from './connection-registry.js';

export interface NatsRegistryOptions extends Partial<RegistryTiming> {
  /** `nats://host:port` (several may be given comma-separated). */
  readonly url: string;
  /** KV bucket name. Default `herald_integrations`. */
  readonly bucket?: string;
  readonly nodeId?: string;
  /** Dead-node ids cleaned up per sweep. Default 500. */
  readonly batch?: number;
  readonly now?: () => number;
}

interface IdState {
  readonly nodes: readonly string[];
  readonly up: boolean;
  readonly due?: number;
}

const encode = (id: string): string => Buffer.from(id, 'utf8').toString('base64url');
const decode = (id: string): string => Buffer.from(id, 'base64url').toString('utf8');

export class NatsConnectionRegistry implements ConnectionRegistry {
  readonly name = 'nats';
  readonly nodeId: string;
  readonly #options: NatsRegistryOptions;
  readonly #ttlMs: number;
  readonly #batch: number;
  readonly #now: () => number;
  readonly #held: Record<TrackedKind, Set<string>> = { user: new Set(), channel: new Set() };
  #nc: NatsConnection | undefined;
  #kv: KV | undefined;

  constructor(options: NatsRegistryOptions) {
    this.#options = options;
    this.nodeId = options.nodeId ?? randomUUID();
    this.#ttlMs = options.nodeTtlMs ?? 15_000;
    this.#batch = options.batch ?? 500;
    this.#now = options.now ?? Date.now;
  }

  get #bucket(): KV {
    if (this.#kv === undefined) throw new Error('the NATS connection registry is not started');
    return this.#kv;
  }

  async start(): Promise<void> {
    this.#nc = await connect({ servers: this.#options.url.split(','), name: `herald-registry-${this.nodeId}` });
    this.#kv = await this.#nc.jetstream().views.kv(this.#options.bucket ?? 'herald_integrations', { history: 1 });
    await this.#kv.put(`node.${this.nodeId}`, jsonBytes({ at: this.#now() }));
  }

  async close(options: CloseOptions = {}): Promise<void> {
    const nc = this.#nc;
    if (nc === undefined || nc.isClosed()) return;
    if (options.leave !== false) {
      try {
        for (const kind of TRACKED_KINDS) {
          for (const id of [...this.#held[kind]]) await this.leave(kind, id, options.delays?.[kind] ?? 0);
        }
        await this.#bucket.delete(`node.${this.nodeId}`);
      } catch {
        // NATS is gone: the other nodes clean up after this one once its heartbeat ages out.
      }
      await nc.drain().catch(() => undefined);
    }
    await nc.close();
  }

  async join(kind: TrackedKind, id: string): Promise<boolean> {
    this.#held[kind].add(id);
    const node = this.nodeId;
    const { before } = await this.#mutate(`m.${kind}.${encode(id)}`, (cur) => ({
      nodes: cur?.nodes.includes(node) ? cur.nodes : [...(cur?.nodes ?? []), node],
      up: true,
    }));
    await this.#bucket.put(`h.${node}.${kind}.${encode(id)}`, new Uint8Array());
    return before?.up !== true;
  }

  async leave(kind: TrackedKind, id: string, delayMs: number): Promise<void> {
    this.#held[kind].delete(id);
    await this.#remove(kind, id, this.nodeId, this.#now() + delayMs);
    await this.#bucket.delete(`h.${this.nodeId}.${kind}.${encode(id)}`);
  }

  async sweep(): Promise<Transition[]> {
    const kv = this.#bucket;
    const now = this.#now();
    const out: Transition[] = [];
    const self = await kv.get(`node.${this.nodeId}`);
    await kv.put(`node.${this.nodeId}`, jsonBytes({ at: now }));
    if (self === null || self.operation !== 'PUT') {
      // This node was declared dead while alive (a long pause): take its ids back.
      for (const kind of TRACKED_KINDS) {
        for (const id of [...this.#held[kind]])
          if (await this.join(kind, id)) out.push({ kind, id, state: 'up', at: now });
      }
    }
    for (const nodeKey of await this.#keys('node.*')) {
      const entry = await kv.get(nodeKey);
      if (entry === null || entry.operation !== 'PUT' || entry.json<{ at: number }>().at >= now - this.#ttlMs) continue;
      await this.#cleanUpDeadNode(nodeKey.slice('node.'.length), entry, now);
    }
    for (const dueKey of await this.#keys('d.>')) {
      const [, kind, encoded] = dueKey.split('.') as [string, TrackedKind, string];
      let fired = false;
      let pending = false;
      await this.#mutate(`m.${kind}.${encoded}`, (cur) => {
        fired = false;
        pending = false;
        if (cur === undefined) return undefined;
        if (cur.nodes.length > 0) return { nodes: cur.nodes, up: cur.up };
        if ((cur.due ?? 0) > now) {
          pending = true;
          return cur;
        }
        fired = cur.up;
        return undefined;
      });
      if (pending) continue;
      await kv.delete(dueKey);
      if (fired) out.push({ kind, id: decode(encoded), state: 'down', at: now });
    }
    return out;
  }

  async isConnected(kind: TrackedKind, id: string): Promise<boolean> {
    const entry = await this.#bucket.get(`m.${kind}.${encode(id)}`);
    return entry !== null && entry.operation === 'PUT' && entry.json<IdState>().nodes.length > 0;
  }

  async #cleanUpDeadNode(node: string, entry: KvEntry, now: number): Promise<void> {
    const held = (await this.#keys(`h.${node}.>`)).slice(0, this.#batch);
    for (const heldKey of held) {
      const [, , kind, encoded] = heldKey.split('.') as [string, string, TrackedKind, string];
      await this.#remove(kind, decode(encoded), node, now);
      await this.#bucket.delete(heldKey);
    }
    if (held.length < this.#batch) {
      // Only if it did not come back meanwhile (its heartbeat would have a newer revision).
      await this.#bucket.delete(`node.${node}`, { previousSeq: entry.revision }).catch(() => undefined);
    }
  }

  async #remove(kind: TrackedKind, id: string, node: string, due: number): Promise<void> {
    let scheduled = false;
    await this.#mutate(`m.${kind}.${encode(id)}`, (cur) => {
      scheduled = false;
      if (cur === undefined || !cur.nodes.includes(node)) return cur;
      const nodes = cur.nodes.filter((n) => n !== node);
      if (nodes.length > 0) return { nodes, up: cur.up };
      scheduled = true;
      return { nodes, up: cur.up, due };
    });
    if (scheduled) await this.#bucket.put(`d.${kind}.${encode(id)}`, new Uint8Array());
  }

  /** Compare-and-set on one key (kvUpdate): retried until nobody wrote the key meanwhile. */
  #mutate(
    key: string,
    change: (cur: IdState | undefined) => IdState | undefined,
  ): Promise<{ before: IdState | undefined; after: IdState | undefined }> {
    return kvUpdate(this.#bucket, key, change);
  }

  async #keys(filter: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of await this.#bucket.keys(filter)) keys.push(key);
    return keys;
  }
}
