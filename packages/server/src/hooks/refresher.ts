/**
 * Extends connections the connect hook opened, on every transport and without the client: at half
 * of its remaining lifetime (at least 2 s before the expiry), a hook-authenticated session with an `expiresAt` is offered to the
 * refresh hook, whose `{expiresAt}` replaces it. A refusal lets the connection end at its expiry
 * (4003: the client reconnects, and the connect hook decides again); a failure is tried again on
 * the next sweep, until the expiry.
 */
import { HeraldError } from '@herald/protocol';
import type { Hub } from '../core/hub.js';
import type { Session } from '../core/session.js';
import type { BackendHooks } from './backend-hooks.js';
import { hookRefresh } from './decisions.js';

export class HookRefresher {
  readonly #hub: Hub;
  readonly #hooks: BackendHooks;
  /** When each session is next offered to the hook (epoch ms); Infinity once the hook refused it. */
  readonly #due = new WeakMap<Session, number>();
  readonly #inFlight = new WeakSet<Session>();

  constructor(hub: Hub, hooks: BackendHooks) {
    this.#hub = hub;
    this.#hooks = hooks;
  }

  /** Called every second by the server's expiry sweep. */
  sweep(): void {
    const now = this.#hub.now();
    for (const session of this.#hub.sessions()) {
      const { viaHook, expiresAt } = session.credentials;
      if (viaHook !== true || expiresAt === undefined || this.#inFlight.has(session)) continue;
      let due = this.#due.get(session);
      if (due === undefined) this.#due.set(session, (due = halfway(now, expiresAt)));
      if (due <= now && expiresAt > now) this.#refresh(session);
    }
  }

  #refresh(session: Session): void {
    this.#inFlight.add(session);
    hookRefresh(this.#hooks, session.credentials, session.id)
      .then((credentials) => {
        if (session.closed) return;
        this.#hub.refresh(session, credentials);
        this.#due.set(session, halfway(this.#hub.now(), credentials.expiresAt ?? Infinity));
      })
      .catch((error: unknown) => {
        // Unavailable: again at the next sweep. Refused: the connection ends at its expiry.
        if (error instanceof HeraldError && error.code === 'hook_unavailable') return;
        this.#due.set(session, Infinity);
      })
      .finally(() => this.#inFlight.delete(session));
  }
}

/** Half the remaining lifetime, and at least two sweeps (2 s) before the expiry. */
function halfway(now: number, expiresAt: number): number {
  return Math.min(now + (expiresAt - now) / 2, expiresAt - 2_000);
}
