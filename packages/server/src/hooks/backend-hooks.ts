/**
 * The hooks that decide, as the hub calls them: each hook is an HTTP endpoint or a function in the
 * process, and either way its answer is checked here against the contract (types.ts), a refusal
 * becomes the HeraldError it names, and every failure (down, slow, garbage, overloaded, circuit
 * open, a function that threw) becomes a retryable `hook_unavailable`, counted by kind. A call
 * never outlives its timeout.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HeraldError, isErrorCode, type ErrorCode } from '@herald/protocol';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { checkAnswer } from './answers.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { HookFailure, HttpHook } from './http-hook.js';
import {
  HOOK_DEFAULTS,
  HOOK_NAMES,
  type HookAnswers,
  type HookClient,
  type HookFunction,
  type HookName,
  type HookRequest,
  type HooksOptions,
} from './types.js';

type Caller = (request: HookRequest) => Promise<unknown>;

/** The longest refusal message passed on to a client. */
const MAX_MESSAGE = 500;

export class BackendHooks {
  readonly #callers = new Map<HookName, Caller>();
  readonly #forward: readonly string[];
  readonly #logger: Logger;
  readonly #cooldownSeconds: number;
  readonly #duration = new Histogram({
    name: 'herald_hook_duration_seconds',
    help: 'Time the backend hooks took to answer (or fail), by hook.',
    labelNames: ['hook'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [],
  });
  readonly #errors = new Counter({
    name: 'herald_hook_errors_total',
    help: 'Hook calls that gave no usable answer, by hook and kind (timeout, unreachable, status, garbage, overloaded, circuit_open, thrown).',
    labelNames: ['hook', 'kind'],
    registers: [],
  });
  readonly #refusals = new Counter({
    name: 'herald_hook_refusals_total',
    help: 'Hook answers that refused ({"error": ...}), by hook.',
    labelNames: ['hook'],
    registers: [],
  });

  constructor(options: HooksOptions, logger: Logger) {
    this.#logger = logger;
    this.#forward = (options.forwardHeaders ?? HOOK_DEFAULTS.forwardHeaders).map((h) => h.toLowerCase());
    const breaker = options.circuitBreaker ?? {
      failures: HOOK_DEFAULTS.breakerFailures,
      cooldownMs: HOOK_DEFAULTS.breakerCooldownMs,
    };
    this.#cooldownSeconds = Math.max(1, Math.ceil(breaker.cooldownMs / 1000));
    const timeoutMs = options.timeoutMs ?? HOOK_DEFAULTS.timeoutMs;
    for (const name of HOOK_NAMES) {
      const hook = options[name];
      if (hook === undefined) continue;
      if (typeof hook === 'function') {
        this.#callers.set(name, inProcess(hook as HookFunction<HookName>, timeoutMs));
        continue;
      }
      const http = new HttpHook({
        url: hook.url,
        timeoutMs: hook.timeoutMs ?? timeoutMs,
        secret: options.secret ?? '',
        concurrency: options.concurrency ?? HOOK_DEFAULTS.concurrency,
        breaker: new CircuitBreaker(breaker.failures, breaker.cooldownMs),
      });
      this.#callers.set(name, (request) => http.call(JSON.stringify(request)));
    }
  }

  /** Whether any hook is configured (then credentials carry the client's forwarded headers). */
  get any(): boolean {
    return this.#callers.size > 0;
  }

  has(name: HookName): boolean {
    return this.#callers.has(name);
  }

  /** Adds the per-hook metrics to a registry (the hub's `/metrics`). */
  register(registry: Registry): void {
    registry.registerMetric(this.#duration);
    registry.registerMetric(this.#errors);
    registry.registerMetric(this.#refusals);
  }

  /** The client as the hooks see it: its transport, address and forwarded headers. */
  client(transport: string, remoteAddress: string | undefined, headers: IncomingHttpHeaders): HookClient {
    const forwarded: Record<string, string> = {};
    for (const name of this.#forward) {
      const value = headers[name];
      if (value !== undefined) forwarded[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return { transport, remoteAddress: remoteAddress ?? '', headers: forwarded };
  }

  /** Calls a configured hook; resolves with its checked answer, rejects with a HeraldError. */
  async call<N extends HookName>(request: HookRequest & { readonly hook: N }): Promise<HookAnswers[N]> {
    const name = request.hook;
    const caller = this.#callers.get(name);
    if (caller === undefined) throw new HeraldError('internal', `no ${name} hook is configured`);
    const end = this.#duration.startTimer({ hook: name });
    try {
      const raw = await caller(request);
      const refusal = refusalOf(raw, name);
      if (refusal !== undefined) {
        this.#refusals.inc({ hook: name });
        throw refusal;
      }
      return checkAnswer(name, raw);
    } catch (error) {
      if (error instanceof HeraldError) throw error;
      const failure = error instanceof HookFailure ? error : new HookFailure('thrown', 'the hook function threw');
      if (!(error instanceof HookFailure)) this.#logger.error({ err: error, hook: name }, 'hook function threw');
      else this.#logger.warn({ hook: name, kind: failure.kind, reason: failure.message }, 'hook failed');
      this.#errors.inc({ hook: name, kind: failure.kind });
      throw new HeraldError('hook_unavailable', `the ${name} hook is unavailable (${failure.message}); try again`, {
        retryAfterSeconds: failure.kind === 'circuit_open' ? this.#cooldownSeconds : 1,
      });
    } finally {
      end();
    }
  }
}

/** An in-process hook, bounded by the same timeout as an HTTP one. A thrown HeraldError refuses. */
function inProcess(fn: HookFunction<HookName>, timeoutMs: number): Caller {
  return (request) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HookFailure('timeout', `no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([Promise.resolve().then(() => fn(request as never)), timeout]).finally(() =>
      clearTimeout(timer),
    );
  };
}

/** `{"error": {"code", "message"}}` as the HeraldError it names; a code outside the registry refuses with the hook's default. */
function refusalOf(raw: unknown, hook: HookName): HeraldError | undefined {
  if (typeof raw !== 'object' || raw === null || !('error' in raw)) return undefined;
  const error = (raw as { error: unknown }).error;
  if (typeof error !== 'object' || error === null) throw new HookFailure('garbage', '"error" must be an object');
  const { code, message } = error as { code?: unknown; message?: unknown };
  const fallback: ErrorCode = hook === 'connect' ? 'unauthorized' : 'forbidden';
  const text =
    typeof message === 'string' && message !== '' ? message.slice(0, MAX_MESSAGE) : `refused by the ${hook} hook`;
  return new HeraldError(isErrorCode(code) ? code : fallback, text);
}
