/**
 * One hook on the application's backend, called over HTTP. Failure contract: every call settles
 * within its timeout (answer body included) with the backend's JSON or a HookFailure naming the
 * kind of failure; past the concurrency limit, or while the circuit is open, a call fails at
 * once. Nothing here retries: the client gets a retryable `hook_unavailable` and decides.
 */
import type { CircuitBreaker } from './circuit-breaker.js';
import { HOOK_SIGNATURE_HEADER, signHookBody } from './signature.js';

/** Why a hook call produced no usable answer (the `kind` label of `herald_hook_errors_total`). */
export type HookFailureKind =
  'timeout' | 'unreachable' | 'status' | 'garbage' | 'overloaded' | 'circuit_open' | 'thrown';

export class HookFailure extends Error {
  readonly kind: HookFailureKind;
  constructor(kind: HookFailureKind, message: string) {
    super(message);
    this.name = 'HookFailure';
    this.kind = kind;
  }
}

/** Largest answer read from a backend: an answer is a few fields, never a stream. */
const MAX_ANSWER_BYTES = 1_048_576;

export interface HttpHookSettings {
  readonly url: string;
  readonly timeoutMs: number;
  readonly secret: string;
  readonly concurrency: number;
  readonly breaker: CircuitBreaker;
}

export class HttpHook {
  readonly #s: HttpHookSettings;
  #inFlight = 0;

  constructor(settings: HttpHookSettings) {
    this.#s = settings;
  }

  /** POSTs `body` and resolves with the parsed JSON answer of an HTTP 200. */
  async call(body: string): Promise<unknown> {
    const s = this.#s;
    if (this.#inFlight >= s.concurrency) throw new HookFailure('overloaded', 'too many calls in flight');
    if (!s.breaker.tryPass()) throw new HookFailure('circuit_open', 'the backend failed repeatedly; not called');
    this.#inFlight++;
    try {
      const answer = await this.#post(body);
      s.breaker.succeeded();
      return answer;
    } catch (error) {
      s.breaker.failed();
      throw error;
    } finally {
      this.#inFlight--;
    }
  }

  async #post(body: string): Promise<unknown> {
    const s = this.#s;
    const signal = AbortSignal.timeout(s.timeoutMs);
    let text: string;
    let status: number;
    try {
      const res = await fetch(s.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [HOOK_SIGNATURE_HEADER]: signHookBody(body, s.secret) },
        body,
        signal,
        redirect: 'error',
      });
      status = res.status;
      const length = Number(res.headers.get('content-length') ?? 0);
      if (length > MAX_ANSWER_BYTES) {
        await res.body?.cancel();
        throw new HookFailure('garbage', `the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
      }
      text = await res.text();
    } catch (error) {
      if (error instanceof HookFailure) throw error;
      if (signal.aborted) throw new HookFailure('timeout', `no answer within ${s.timeoutMs} ms`);
      throw new HookFailure('unreachable', 'the backend could not be reached');
    }
    if (status !== 200) throw new HookFailure('status', `the backend answered HTTP ${status}`);
    if (text.length > MAX_ANSWER_BYTES) throw new HookFailure('garbage', 'the answer is too large');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HookFailure('garbage', 'the answer is not JSON');
    }
  }
}
