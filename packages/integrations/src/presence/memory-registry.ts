/**
 * The connection registry of the embedded default: one process, no network. Several registries
 * may share one `MemoryRegistryState` to act as nodes of one cluster (tests, the conformance suite).
 */
import { randomUUID } from 'node:crypto';
import {
  TRACKED_KINDS,
  type CloseOptions,
  type ConnectionRegistry,
  type RegistryTiming,
  type TrackedKind,
  type Transition,
} from './connection-registry.js';

interface NodeEntry {
  lastSeen: number;
  readonly held: Record<TrackedKind, Set<string>>;
}

/** The shared state: what a Redis database or a NATS KV bucket holds for the other registries. */
export class MemoryRegistryState {
  /** Nodes holding each id (key: kind + NUL + id). */
  readonly members = new Map<string, Set<string>>();
  /** Ids announced up and not yet announced down. */
  readonly up = new Set<string>();
  /** Ids no node holds, with the time their down transition is due. */
  readonly due = new Map<string, number>();
  readonly nodes = new Map<string, NodeEntry>();
}

export interface MemoryRegistryOptions extends Partial<RegistryTiming> {
  readonly state?: MemoryRegistryState;
  readonly nodeId?: string;
  /** Clock, epoch ms. */
  readonly now?: () => number;
}

const key = (kind: TrackedKind, id: string): string => `${kind}\0${id}`;

export class MemoryConnectionRegistry implements ConnectionRegistry {
  readonly name = 'memory';
  readonly nodeId: string;
  readonly #state: MemoryRegistryState;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #held: Record<TrackedKind, Set<string>> = { user: new Set(), channel: new Set() };
  #open = false;

  constructor(options: MemoryRegistryOptions = {}) {
    this.#state = options.state ?? new MemoryRegistryState();
    this.nodeId = options.nodeId ?? randomUUID();
    this.#ttlMs = options.nodeTtlMs ?? 15_000;
    this.#now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.#open = true;
    this.#state.nodes.set(this.nodeId, { lastSeen: this.#now(), held: this.#held });
  }

  async close(options: CloseOptions = {}): Promise<void> {
    if (!this.#open) return;
    if (options.leave !== false) {
      for (const kind of TRACKED_KINDS)
        for (const id of [...this.#held[kind]]) await this.leave(kind, id, options.delays?.[kind] ?? 0);
      this.#state.nodes.delete(this.nodeId);
    }
    // Without leave (a crash, for tests) the node entry stays until it ages out.
    this.#open = false;
  }

  async join(kind: TrackedKind, id: string): Promise<boolean> {
    this.#held[kind].add(id);
    const k = key(kind, id);
    let nodes = this.#state.members.get(k);
    if (nodes === undefined) this.#state.members.set(k, (nodes = new Set()));
    nodes.add(this.nodeId);
    if (this.#state.up.has(k)) return false;
    this.#state.up.add(k);
    return true;
  }

  async leave(kind: TrackedKind, id: string, delayMs: number): Promise<void> {
    this.#held[kind].delete(id);
    this.#removeMember(kind, id, this.nodeId, this.#now() + delayMs);
  }

  async sweep(): Promise<Transition[]> {
    if (!this.#open) return [];
    const now = this.#now();
    const state = this.#state;
    const out: Transition[] = [];
    const self = state.nodes.get(this.nodeId);
    if (self === undefined) {
      // Declared dead while alive (a long pause): take our ids back.
      state.nodes.set(this.nodeId, { lastSeen: now, held: this.#held });
      for (const kind of TRACKED_KINDS) {
        for (const id of this.#held[kind]) if (await this.join(kind, id)) out.push({ kind, id, state: 'up', at: now });
      }
    } else {
      self.lastSeen = now;
    }
    for (const [nodeId, node] of [...state.nodes]) {
      if (node.lastSeen >= now - this.#ttlMs) continue;
      state.nodes.delete(nodeId);
      for (const kind of TRACKED_KINDS) for (const id of node.held[kind]) this.#removeMember(kind, id, nodeId, now);
    }
    for (const [k, due] of [...state.due]) {
      if (due > now) continue;
      state.due.delete(k);
      if (state.members.has(k) || !state.up.delete(k)) continue;
      const sep = k.indexOf('\0');
      out.push({ kind: k.slice(0, sep) as TrackedKind, id: k.slice(sep + 1), state: 'down', at: now });
    }
    return out;
  }

  async isConnected(kind: TrackedKind, id: string): Promise<boolean> {
    return this.#state.members.has(key(kind, id));
  }

  #removeMember(kind: TrackedKind, id: string, nodeId: string, due: number): void {
    const k = key(kind, id);
    const nodes = this.#state.members.get(k);
    if (nodes === undefined) return;
    nodes.delete(nodeId);
    if (nodes.size > 0) return;
    this.#state.members.delete(k);
    this.#state.due.set(k, due);
  }
}
