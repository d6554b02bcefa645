/**
 * Who is connected, across every node: the shared state behind the `user.online`/`user.offline`
 * and `channel.occupied`/`channel.vacated` webhooks and behind "is this user offline?" for Web
 * Push. Each node reports only its own transitions (its first connection of a user opened, its
 * last one closed); the registry aggregates them over the nodes and decides, atomically, which
 * single node announces each cluster-wide transition, so a transition is announced once however
 * many nodes saw it. Implementations: memory (one process), Redis (Lua), NATS KV (CAS).
 */

/** What is counted: a user's connections, or a channel's present subscribers. */
export type TrackedKind = 'user' | 'channel';

export const TRACKED_KINDS: readonly TrackedKind[] = ['user', 'channel'];

/** A cluster-wide transition, claimed by exactly one node. */
export interface Transition {
  readonly kind: TrackedKind;
  readonly id: string;
  /** `up`: the first connection anywhere (user online, channel occupied); `down`: none left for the delay. */
  readonly state: 'up' | 'down';
  /** When the claiming node decided it, epoch ms. */
  readonly at: number;
}

export interface ConnectionRegistry {
  readonly name: string;
  /** This node's id in the shared state. */
  readonly nodeId: string;
  start(): Promise<void>;
  /**
   * Graceful stop: every id this node still holds is left with `delays` (so the other nodes, or
   * this cluster's next node, announce the `down` transitions unless the clients reconnect
   * elsewhere in time), then connections close.
   */
  close(options?: CloseOptions): Promise<void>;
  /**
   * This node now has `id` (its first connection of the user, or first present subscriber of the
   * channel). Resolves true when this call took `id` from down to up across all nodes: exactly one
   * node gets true per up transition. Ids that went down less than their delay ago are still up
   * (a page reload is not an offline-online pair), so rejoining them gives false.
   */
  join(kind: TrackedKind, id: string): Promise<boolean>;
  /**
   * This node no longer has `id`. When no node has it, it goes down once `delayMs` pass without
   * any node joining it again; `sweep` reports that.
   */
  leave(kind: TrackedKind, id: string, delayMs: number): Promise<void>;
  /**
   * Heartbeats this node, takes the ids of nodes that stopped heartbeating out of the shared state,
   * and claims the down transitions that became due. Each transition goes to exactly one node's
   * sweep. Called every `sweepIntervalMs` by the tracker.
   */
  sweep(): Promise<Transition[]>;
  /** Whether any live node has `id` right now (not debounced: a user mid-reload is not connected). */
  isConnected(kind: TrackedKind, id: string): Promise<boolean>;
}

export interface CloseOptions {
  /** Delay of the down transitions of what this node still holds, per kind. Default 0. */
  readonly delays?: Partial<Record<TrackedKind, number>>;
  /** false: stop without leaving anything, as a crash would (a failure switch for tests). */
  readonly leave?: boolean;
}

export interface RegistryTiming {
  /** A node that has not heartbeated for this long is considered dead. Default 15 s. */
  readonly nodeTtlMs: number;
}
