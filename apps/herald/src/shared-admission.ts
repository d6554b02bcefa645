/**
 * The admission limits of `herald serve --workers N` (`HERALD_MAX_CONNECTIONS_PER_IP`,
 * `HERALD_CONNECTION_RATE_PER_IP`, `HERALD_CONNECTION_RATE`) counted once for the machine: the
 * primary holds the one `Admission`, and each worker asks it over the cluster's IPC channel before
 * a WebSocket upgrade, an SSE stream, a long-poll or a Socket.IO session (one round trip between
 * processes, only when a limit is set). An admitted connection holds a lease the worker gives
 * back when it closes; the leases of a worker that exits are given back for it.
 *
 * The per-user cap (`HERALD_MAX_CONNECTIONS_PER_USER`) is not here: the hub counts it over every
 * node through the broker's node requests, which the workers' local broker answers too.
 */
import type { Worker } from 'node:cluster';
import { Admission, type AdmissionControl, type AdmissionOptions, type AdmissionVerdict } from '@herald/server';

/** A worker waits this long for the primary's answer, then refuses (the primary is stuck or gone). */
const ANSWER_TIMEOUT_MS = 5_000;

type Ask = { readonly herald: 'admit'; readonly id: number; readonly address: string | undefined };
type GiveBack = { readonly herald: 'release'; readonly lease: number };
type Answer = {
  readonly herald: 'admitted';
  readonly id: number;
  readonly lease?: number;
  readonly reason?: string;
  readonly retryAfterSeconds?: number;
};

export interface AdmissionLimits {
  readonly maxConnectionsPerIp?: number | undefined;
  readonly connectionRatePerIp?: { readonly perSecond: number; readonly burst: number } | undefined;
  readonly connectionRate?: { readonly perSecond: number; readonly burst: number } | undefined;
}

/** The limits as `Admission` takes them, with the server's defaults (all off). */
export function admissionOptions(limits: AdmissionLimits): AdmissionOptions {
  const off = { perSecond: 0, burst: 0 };
  return {
    maxConnectionsPerIp: limits.maxConnectionsPerIp ?? 0,
    connectionRatePerIp: limits.connectionRatePerIp ?? off,
    connectionRate: limits.connectionRate ?? off,
  };
}

/** In the primary: decides for every worker. */
export class AdmissionHost {
  readonly #admission: Admission;
  readonly #leases = new Map<Worker, Map<number, () => void>>();
  #nextLease = 1;

  constructor(options: AdmissionOptions) {
    this.#admission = new Admission(options);
  }

  get enabled(): boolean {
    return this.#admission.enabled;
  }

  /** Answers one of `worker`'s messages if it is about admission; other messages are left alone. */
  handle(worker: Worker, message: Ask | GiveBack | { readonly herald?: unknown }): void {
    if (message?.herald === 'admit') {
      const ask = message as Ask;
      const verdict = this.#admission.admit(ask.address);
      if (!verdict.ok) {
        send(worker, {
          herald: 'admitted',
          id: ask.id,
          reason: verdict.reason,
          retryAfterSeconds: verdict.retryAfterSeconds,
        });
        return;
      }
      const lease = this.#nextLease++;
      let leases = this.#leases.get(worker);
      if (leases === undefined) this.#leases.set(worker, (leases = new Map()));
      leases.set(lease, verdict.release);
      send(worker, { herald: 'admitted', id: ask.id, lease });
    } else if (message?.herald === 'release') {
      const lease = (message as GiveBack).lease;
      const leases = this.#leases.get(worker);
      leases?.get(lease)?.();
      leases?.delete(lease);
    }
  }

  /** `worker` exited: its connections are gone with it. */
  forget(worker: Worker): void {
    for (const release of this.#leases.get(worker)?.values() ?? []) release();
    this.#leases.delete(worker);
  }
}

function send(worker: Worker, answer: Answer): void {
  if (worker.isConnected()) worker.send(answer);
}

/** In a worker: the `admission` of its HeraldServer, asking the primary. */
export class SharedAdmission implements AdmissionControl {
  readonly enabled: boolean;
  readonly #waiting = new Map<number, (answer: Answer) => void>();
  #nextId = 1;

  /** `options` are this worker's limits, the same as the primary's: they say whether to ask at all. */
  constructor(options: AdmissionOptions) {
    this.enabled = new Admission(options).enabled;
    if (!this.enabled) return;
    process.on('message', (message: Answer | { readonly herald?: unknown }) => {
      if (message?.herald !== 'admitted') return;
      const answer = message as Answer;
      const waiting = this.#waiting.get(answer.id);
      this.#waiting.delete(answer.id);
      if (waiting !== undefined) waiting(answer);
      else if (answer.lease !== undefined) giveBack(answer.lease); // answered after the timeout
    });
  }

  admit(address: string | undefined): Promise<AdmissionVerdict> {
    return new Promise((resolve) => {
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve({ ok: false, reason: 'the hub could not decide admission in time; retry', retryAfterSeconds: 1 });
      }, ANSWER_TIMEOUT_MS);
      timer.unref();
      this.#waiting.set(id, (answer) => {
        clearTimeout(timer);
        const lease = answer.lease;
        if (lease === undefined) {
          resolve({ ok: false, reason: answer.reason ?? 'refused', retryAfterSeconds: answer.retryAfterSeconds ?? 1 });
          return;
        }
        let released = false;
        resolve({
          ok: true,
          release: () => {
            if (released) return;
            released = true;
            giveBack(lease);
          },
        });
      });
      process.send?.({ herald: 'admit', id, address } satisfies Ask);
    });
  }
}

function giveBack(lease: number): void {
  if (process.connected) process.send?.({ herald: 'release', lease } satisfies GiveBack);
}
