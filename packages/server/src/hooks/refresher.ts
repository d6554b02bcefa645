/**
 * Extends connections the connect hook opened, on every transport and without the client: at half
 * of its remaining lifetime (at least 2 s before the expiry), a hook-authenticated session with an
 * `expiresAt` is offered to the refresh hook, whose `{expiresAt}` replaces it. A refusal lets the
 * connection end at its expiry (4003: the client reconnects, and the connect hook decides again);
 * a failure is tried again on the next sweep, until the expiry.
 *
 * Sessions are planned when they open and held by the time they are due (a TimeIndex), so the
 * once-a-second sweep reads only the sessions it offers to the hook, not every session.
 */
import { HeraldError } from '@herald/protocol';
import type { Credentials } from '../core/credentials.js';
import type { Hub } from '../core/hub.js';
import type { Session } from '../core/session.js';
import { TimeIndex } from '../core/time-index.js';
import type { BackendHooks } from './backend-hooks.js';
import { hookRefresh } from './decisions.js';

interface Plan {
  /** When the session is offered to the hook (epoch ms). */
  readonly dueAt: number;
  /** The credentials the plan was made for: a session whose credentials were replaced since is planned again. */
  readonly credentials: Credentials;
}

export class HookRefresher {
  readonly #hub: Hub;
  readonly #hooks: BackendHooks;
  readonly #plans = new WeakMap<Session, Plan>();
  readonly #schedule = new TimeIndex<Session>((session) => this.#plans.get(session)?.dueAt);

  constructor(hub: Hub, hooks: BackendHooks) {
    this.#hub = hub;
    this.#hooks = hooks;
    hub.addHooks({
      sessionOpened: (session) => this.#plan(session, halfway(hub.now(), session.credentials.expiresAt)),
      sessionClosed: (session) => this.#unplan(session),
    });
  }

  /** Sessions waiting for their turn at the hook (not those being refreshed now). */
  get planned(): number {
    return this.#schedule.size;
  }

  /** Called every second by the server's expiry sweep. */
  sweep(): void {
    const now = this.#hub.now();
    for (const session of [...this.#schedule.due(now)]) {
      const plan = this.#plans.get(session) as Plan;
      this.#unplan(session);
      if (session.credentials !== plan.credentials) {
        // Replaced since it was planned (the client's own `refresh`): planned from the new expiry.
        this.#plan(session, halfway(now, session.credentials.expiresAt));
      } else if ((plan.credentials.expiresAt as number) > now) {
        this.#refresh(session);
      }
    }
  }

  /** Holds a hook-authenticated session with an expiry until `dueAt`; any other is not held. */
  #plan(session: Session, dueAt: number): void {
    const credentials = session.credentials;
    const { viaHook, expiresAt } = credentials;
    if (session.closed || viaHook !== true || expiresAt === undefined) return;
    this.#plans.set(session, { dueAt, credentials });
    this.#schedule.add(session);
  }

  #unplan(session: Session): void {
    this.#schedule.delete(session);
    this.#plans.delete(session);
  }

  #refresh(session: Session): void {
    hookRefresh(this.#hooks, session.credentials, session.id)
      .then((credentials) => {
        if (session.closed) return;
        this.#hub.refresh(session, credentials);
        this.#plan(session, halfway(this.#hub.now(), credentials.expiresAt));
      })
      .catch((error: unknown) => {
        // Unavailable: again at the next sweep. Refused: not planned again, the connection ends at its expiry.
        if (error instanceof HeraldError && error.code === 'hook_unavailable') this.#plan(session, this.#hub.now());
      });
  }
}

/** Half the remaining lifetime, and at least two sweeps (2 s) before the expiry. */
function halfway(now: number, expiresAt = Infinity): number {
  return Math.min(now + (expiresAt - now) / 2, expiresAt - 2_000);
}
