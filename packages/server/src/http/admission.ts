/**
 * Admission control for new client connections (WebSocket upgrades, SSE streams, long-polls):
 * a cap on the connections one client address holds open, and token buckets that bound how fast
 * new connections arrive, per address and for the whole hub. A refusal is decided before any
 * upgrade, stream or authentication work, and answered HTTP 429 `rate_limited` with
 * `Retry-After`, so a refused client costs the hub one small answer.
 *
 * Addresses are the TCP peer's: behind a proxy every client shares the proxy's address, so the
 * per-address limits are off by default and are meant for hubs that face clients directly (see
 * docs/reliability.md). IPv4-mapped IPv6 addresses count as their IPv4 address, and IPv6 addresses
 * count per /64, the block one subscriber usually gets, so rotating addresses inside it does not
 * escape the cap.
 */

import { TokenBucket, type RateLimit } from '../core/token-bucket.js';

export type { RateLimit } from '../core/token-bucket.js';

export interface AdmissionOptions {
  /** Connections one address may hold open at once; 0 = no cap. */
  readonly maxConnectionsPerIp: number;
  /** New connections per second from one address. */
  readonly connectionRatePerIp: RateLimit;
  /** New connections per second for the whole hub (reconnect storms). */
  readonly connectionRate: RateLimit;
  readonly now?: () => number;
}

export type AdmissionVerdict =
  | {
      readonly ok: true;
      /** Call once when the connection ends; later calls do nothing. */
      readonly release: () => void;
    }
  | { readonly ok: false; readonly reason: string; readonly retryAfterSeconds: number };

/**
 * What decides admission: this process's `Admission`, or one shared by several processes (asked
 * over IPC, hence the promise). `enabled` false means every connection is admitted untracked.
 */
export interface AdmissionControl {
  readonly enabled: boolean;
  admit(address: string | undefined): AdmissionVerdict | Promise<AdmissionVerdict>;
}

interface AddressState {
  open: number;
  bucket: TokenBucket | undefined;
}

/** Forget idle addresses at most this often; an idle address's state is a full bucket, which is the default. */
const SWEEP_INTERVAL_MS = 10_000;
/** Map size that triggers a sweep before the interval is up. */
const EARLY_SWEEP_SIZE = 10_000;

export class Admission implements AdmissionControl {
  readonly #options: AdmissionOptions;
  readonly #now: () => number;
  readonly #addresses = new Map<string, AddressState>();
  readonly #global: TokenBucket | undefined;
  readonly #perIpRate: boolean;
  #lastSweep: number;
  #sweepAt = EARLY_SWEEP_SIZE;
  #open = 0;

  constructor(options: AdmissionOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const now = this.#now();
    this.#lastSweep = now;
    this.#global = options.connectionRate.perSecond > 0 ? new TokenBucket(options.connectionRate, now) : undefined;
    this.#perIpRate = options.connectionRatePerIp.perSecond > 0;
  }

  /** Whether any limit is configured; when none is, `admit` always says yes and tracks nothing. */
  get enabled(): boolean {
    return this.#options.maxConnectionsPerIp > 0 || this.#perIpRate || this.#global !== undefined;
  }

  /** Connections admitted and not yet released. */
  get open(): number {
    return this.#open;
  }

  /** Addresses with state (open connections or a bucket that is not full yet). */
  get trackedAddresses(): number {
    return this.#addresses.size;
  }

  /**
   * Decides for one new connection from `address` (the TCP peer). Checks everything before
   * taking anything, so a refusal by one limit does not spend the budget of another.
   */
  admit(address: string | undefined): AdmissionVerdict {
    if (!this.enabled) return { ok: true, release: noop };
    const now = this.#now();
    if (now - this.#lastSweep >= SWEEP_INTERVAL_MS) this.#sweep(now);
    const key = addressKey(address ?? 'unknown');
    let state = this.#addresses.get(key);
    const max = this.#options.maxConnectionsPerIp;
    if (max > 0 && state !== undefined && state.open >= max) {
      // Nobody knows when a connection will close; a short retry keeps well-behaved clients polite.
      return { ok: false, reason: `at most ${max} open connections per client address`, retryAfterSeconds: 5 };
    }
    if (this.#perIpRate) {
      state ??= this.#track(key, now);
      const bucket = (state.bucket ??= new TokenBucket(this.#options.connectionRatePerIp, now));
      if (!bucket.available(now)) {
        return {
          ok: false,
          reason: 'too many new connections from this address',
          retryAfterSeconds: bucket.retryAfter(now),
        };
      }
    }
    const global = this.#global;
    if (global !== undefined && !global.available(now)) {
      return {
        ok: false,
        reason: 'the hub is admitting connections slowly; retry',
        retryAfterSeconds: global.retryAfter(now),
      };
    }
    state?.bucket?.take();
    global?.take();
    if (max <= 0) return { ok: true, release: noop };
    state ??= this.#track(key, now);
    const held = state;
    held.open++;
    this.#open++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        held.open--;
        this.#open--;
      },
    };
  }

  #track(key: string, now: number): AddressState {
    // Keep the map to addresses that matter: sweep early when it grows fast (before adding, so
    // the new entry is never the one swept).
    if (this.#addresses.size >= this.#sweepAt) {
      this.#sweep(now);
      this.#sweepAt = Math.max(EARLY_SWEEP_SIZE, this.#addresses.size * 2);
    }
    const state: AddressState = { open: 0, bucket: undefined };
    this.#addresses.set(key, state);
    return state;
  }

  #sweep(now: number): void {
    this.#lastSweep = now;
    for (const [key, state] of this.#addresses) {
      if (state.open === 0 && (state.bucket === undefined || state.bucket.full(now))) this.#addresses.delete(key);
    }
  }
}

function noop(): void {}

/** The key an address is counted under: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 per /64. */
export function addressKey(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  if (mapped !== null) return mapped[1] as string;
  if (!lower.includes(':')) return lower;
  const hextets = expandIpv6(lower.split('%')[0] as string);
  return hextets === undefined ? lower : `${hextets.slice(0, 4).join(':')}::/64`;
}

function expandIpv6(address: string): string[] | undefined {
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : (halves[0] as string).split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? (halves[1] as string).split(':') : [];
  // An embedded IPv4 tail (::1.2.3.4) takes two hextets; it is past the /64 anyway.
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? head.length !== 8 : fill < 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  return all.map((h) => h.replace(/^0+(?=.)/, ''));
}
