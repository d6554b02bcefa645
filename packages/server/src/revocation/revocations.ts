/**
 * Applies revocations on this node. Every entry the store knows is held here, in memory, loaded
 * at start and fed by the store as entries are added on any node (and loaded again after the
 * store lost its connection). So checking a token costs two map lookups, and no token check waits
 * for Redis or NATS.
 *
 * The contract (docs/protocol-extensions.md, "Revocation"):
 * - `POST /api/revoke` answers once the entry is stored. From then on the node that answered
 *   refuses matching tokens; every other node does from the moment the store's notification
 *   reaches it (pub/sub or a KV watch), or, when it was cut off, from its reconnect and reload.
 * - Whenever this node learns an entry it ends its live connections whose token the entry
 *   refuses (4001 "token revoked", reconnect false), and any connection opened with such a token
 *   after the check but before the entry arrived is ended as it opens.
 */
import { CloseCode, HeraldError, closeInfo, type DisconnectInfo } from '@herald/protocol';
import type { Logger } from 'pino';
import type { Credentials } from '../core/credentials.js';
import type { Hub } from '../core/hub.js';
import {
  combine,
  isExpired,
  refuses,
  revocationFor,
  type Revocation,
  type RevocationPolicy,
  type RevocationStore,
  type RevokeInput,
} from './revocation.js';

export const REVOKED: DisconnectInfo = Object.freeze(closeInfo(CloseCode.Unauthorized, 'token revoked'));

export interface RevocationsOptions {
  readonly store: RevocationStore;
  readonly hub: Hub;
  readonly policy: RevocationPolicy;
  readonly logger: Logger;
  readonly now?: () => number;
}

type UserRevocation = Extract<Revocation, { kind: 'user' }>;
type TokenRevocation = Extract<Revocation, { kind: 'token' }>;

/** Expired entries are dropped from memory this often (they stop matching as soon as they expire). */
const SWEEP_INTERVAL_MS = 60_000;

export class Revocations {
  readonly #options: RevocationsOptions;
  readonly #now: () => number;
  readonly #users = new Map<string, UserRevocation>();
  readonly #tokens = new Map<string, TokenRevocation>();
  #sessionSweepScheduled = false;
  #sweeper: NodeJS.Timeout | undefined;
  #removeHooks: (() => void) | undefined;

  constructor(options: RevocationsOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Loads every stored entry, then follows the store. */
  async start(): Promise<void> {
    this.#removeHooks = this.#options.hub.addHooks({
      sessionOpened: (session) => {
        if (this.refuses(session.credentials)) this.#scheduleSessionSweep();
      },
    });
    await this.#options.store.start((revocation) => this.#learn(revocation));
    this.#sweeper = setInterval(() => this.#dropExpired(), SWEEP_INTERVAL_MS).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#removeHooks?.();
    await this.#options.store.close();
  }

  /** Stores a revocation (the body of `POST /api/revoke`) and applies it here at once. */
  async revoke(input: RevokeInput): Promise<Revocation> {
    const entry = revocationFor(input, this.#options.policy, this.#now() / 1000);
    try {
      await this.#options.store.add(entry);
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'revocation store did not take an entry');
      throw new HeraldError('broker_unavailable', 'the revocation could not be stored; nothing was revoked, try again');
    }
    this.#learn(entry);
    return entry;
  }

  /** Whether a token with these credentials is revoked. Anonymous clients never are. */
  refuses(credentials: Credentials): boolean {
    const now = this.#now() / 1000;
    if (this.#users.size > 0 && credentials.userId !== '') {
      const entry = this.#users.get(credentials.userId);
      if (entry !== undefined && !isExpired(entry, now) && refuses(entry, credentials)) return true;
    }
    if (this.#tokens.size > 0 && credentials.jti !== undefined) {
      const entry = this.#tokens.get(credentials.jti);
      if (entry !== undefined && !isExpired(entry, now)) return true;
    }
    return false;
  }

  /** Entries held in memory (tests, the admin page). */
  get size(): number {
    return this.#users.size + this.#tokens.size;
  }

  #learn(revocation: Revocation): void {
    if (isExpired(revocation, this.#now() / 1000)) return;
    if (revocation.kind === 'user') {
      const old = this.#users.get(revocation.userId);
      const next = old === undefined ? revocation : (combine(old, revocation) as UserRevocation);
      if (old !== undefined && old.before === next.before && old.expiresAt === next.expiresAt) return;
      this.#users.set(next.userId, next);
    } else {
      const old = this.#tokens.get(revocation.jti);
      const next = old === undefined ? revocation : (combine(old, revocation) as TokenRevocation);
      if (old !== undefined && old.expiresAt === next.expiresAt) return;
      this.#tokens.set(next.jti, next);
    }
    this.#scheduleSessionSweep();
  }

  /** One pass over the sessions for any number of entries learned in the same turn. */
  #scheduleSessionSweep(): void {
    if (this.#sessionSweepScheduled) return;
    this.#sessionSweepScheduled = true;
    setImmediate(() => {
      this.#sessionSweepScheduled = false;
      const hub = this.#options.hub;
      let ended = 0;
      for (const session of hub.sessions()) {
        if (session.closed || !this.refuses(session.credentials)) continue;
        hub.endSession(session, REVOKED);
        ended++;
      }
      if (ended > 0) this.#options.logger.info({ sessions: ended }, 'ended connections of revoked tokens');
    });
  }

  #dropExpired(): void {
    const now = this.#now() / 1000;
    for (const [key, entry] of this.#users) if (isExpired(entry, now)) this.#users.delete(key);
    for (const [key, entry] of this.#tokens) if (isExpired(entry, now)) this.#tokens.delete(key);
  }
}
