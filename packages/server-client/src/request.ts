/**
 * One call to the server API: the request, the answer read as the hub's JSON, the hub's errors
 * turned into `HeraldApiError`, and the retries (retry.ts). Endpoints are values (`Endpoint`), so
 * a new endpoint is a few lines in client.ts and nothing here changes.
 */
import { HeraldApiError } from './errors.js';
import { retryDelay, type RetryOptions } from './retry.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Endpoint {
  readonly method: HttpMethod;
  /** Path under the hub's URL, its parts already encoded (`channelPath` encodes a channel). */
  readonly path: string;
  /** Query parameters; undefined ones are left out. */
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Sent as JSON. */
  readonly body?: unknown;
  /**
   * Sending it twice does what sending it once does (a read, a publish with its idempotency key):
   * only then are failures retried, since an attempt that got no answer may have been applied.
   */
  readonly idempotent: boolean;
}

export interface CallOptions {
  /** Aborts the call, also between retries; rejects with code `aborted`. */
  readonly signal?: AbortSignal;
  /** This call's retries, instead of the client's. */
  readonly retry?: RetryOptions;
  /** This call's per-attempt timeout, instead of the client's. */
  readonly timeoutMs?: number;
}

export interface RetryEvent {
  readonly endpoint: Endpoint;
  /** The attempt that failed, counting from 1. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: HeraldApiError;
}

export interface RequestSettings {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
  readonly retry: RetryOptions;
  readonly onRetry: ((event: RetryEvent) => void) | undefined;
}

/** Sends `endpoint`, retrying what is safe to retry; resolves with the answer's JSON. */
export async function request<T>(settings: RequestSettings, endpoint: Endpoint, options: CallOptions = {}): Promise<T> {
  const url = urlOf(settings.baseUrl, endpoint);
  const headers: Record<string, string> = { authorization: `Bearer ${settings.apiKey}`, accept: 'application/json' };
  if (endpoint.body !== undefined) headers['content-type'] = 'application/json';
  const init: RequestInit = {
    method: endpoint.method,
    headers,
    ...(endpoint.body === undefined ? {} : { body: JSON.stringify(endpoint.body) }),
  };
  const retry = options.retry ?? settings.retry;
  const timeoutMs = options.timeoutMs ?? settings.timeoutMs;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    let error: HeraldApiError;
    try {
      return (await attemptOnce(settings.fetch, url, init, timeoutMs, options.signal)) as T;
    } catch (thrown) {
      error = thrown as HeraldApiError;
    }
    const delay =
      endpoint.idempotent && error.code !== 'aborted'
        ? retryDelay(error, attempt, Date.now() - started, retry)
        : undefined;
    if (delay === undefined) throw error.withAttempts(attempt);
    settings.onRetry?.({ endpoint, attempt, delayMs: delay, error });
    await pause(delay, options.signal, attempt);
  }
}

/** One attempt: resolves with the parsed answer, or rejects with a HeraldApiError. */
async function attemptOnce(
  fetchImpl: typeof fetch,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onAbort = (): void => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const failure = (cause: unknown, what: string): HeraldApiError => {
    if (signal?.aborted === true) return new HeraldApiError('aborted', 'the call was aborted', { cause });
    if (timedOut) return new HeraldApiError('timeout', `no answer within ${timeoutMs} ms`, { cause });
    return new HeraldApiError('network', what, { cause });
  };
  let status: number;
  let retryAfter: string | null;
  let text: string;
  try {
    if (signal?.aborted === true) throw failure(signal.reason, 'aborted');
    let response: Response;
    try {
      response = await fetchImpl(url, { ...init, signal: controller.signal });
    } catch (cause) {
      throw failure(cause, 'the hub could not be reached');
    }
    status = response.status;
    retryAfter = response.headers.get('retry-after');
    try {
      text = await response.text();
    } catch (cause) {
      throw failure(cause, 'the answer was cut short');
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (status >= 200 && status < 300) {
    if (body === undefined) throw new HeraldApiError('bad_answer', `HTTP ${status} without a JSON answer`, { status });
    return body;
  }
  const wire = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const seconds = retryAfterSeconds(retryAfter);
  const details = { status, ...(seconds === undefined ? {} : { retryAfterSeconds: seconds }) };
  if (typeof wire?.code === 'string') throw new HeraldApiError(wire.code, String(wire.message ?? ''), details);
  throw new HeraldApiError('bad_answer', `HTTP ${status} without the hub's error JSON`, details);
}

function urlOf(baseUrl: string, endpoint: Endpoint): string {
  let url = baseUrl + endpoint.path;
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(endpoint.query ?? {}))
    if (value !== undefined) query.set(name, String(value));
  const text = query.toString();
  if (text !== '') url += `?${text}`;
  return url;
}

/** `Retry-After` as seconds: a number of seconds, or an HTTP date. */
function retryAfterSeconds(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}

function pause(ms: number, signal: AbortSignal | undefined, attempts: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = (): void => {
      clearTimeout(timer);
      reject(new HeraldApiError('aborted', 'the call was aborted', { attempts }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }, ms);
    if (signal?.aborted === true) return aborted();
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

/** The path of a channel's resource: the channel URL-encoded, as the API wants it. */
export function channelPath(channel: string, resource: string): string {
  return `/api/channels/${encodeURIComponent(channel)}/${resource}`;
}
