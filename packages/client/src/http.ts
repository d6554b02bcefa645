/** Plain HTTP with the hub: JSON answers, the hub's error bodies as typed errors, publish over HTTP. */
import type { Position } from '@herald/protocol';
import { HeraldClientError } from './errors.js';
import type { Ended, Host, RequestMethod } from './transports/transport.js';

/** The hub's `{"error": {code, message}}`, or a `network` error for anything else (a proxy's page). */
export async function httpError(res: Response): Promise<HeraldClientError> {
  let error: { code?: unknown; message?: unknown } | undefined;
  try {
    error = ((await res.json()) as { error?: typeof error }).error;
  } catch {
    // not the hub's JSON
  }
  return typeof error?.code === 'string'
    ? new HeraldClientError(error.code as HeraldClientError['code'], String(error.message), { status: res.status })
    : new HeraldClientError('network', `HTTP ${res.status}`, { status: res.status });
}

/**
 * How a failed SSE or poll request ends the connection: the HTTP refusal mapped onto the close
 * code whose handling fits it (README, close codes), the error carrying that code.
 */
export function httpEnded(error: HeraldClientError): Ended {
  const status = error.status ?? 0;
  const code =
    error.code === 'network' || error.code === 'token_failed'
      ? 1006
      : status === 401
        ? 4001
        : status === 429
          ? 4005
          : status >= 500
            ? 1011
            : 4002;
  return {
    code,
    reason: error.message,
    verdict: error.code !== 'network',
    error: new HeraldClientError(error.code, error.message, { status, closeCode: code, cause: error.cause }),
  };
}

export function authorization(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

export async function fetchJson(host: Host, url: string, init: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await host.fetch(url, init);
  } catch (cause) {
    if (init.signal?.aborted) throw cause;
    throw new HeraldClientError('network', 'request failed', { cause });
  }
  if (!res.ok) throw await httpError(res);
  try {
    return await res.json();
  } catch (cause) {
    throw new HeraldClientError('network', 'answer cut short', { cause });
  }
}

/**
 * Requests over SSE and long-polling, on the server API with the client token (PROTOCOL.md v1.1
 * section 4): publish within the token's `publish` patterns, presence and history within its
 * `channels` patterns, as a WebSocket client has them.
 */
export async function httpRequest(
  host: Host,
  method: RequestMethod,
  params: Record<string, unknown>,
): Promise<unknown> {
  const token = await host.token(false);
  const headers = authorization(token);
  if (method === 'publish' || method === 'rpc') {
    return fetchJson(host, `${host.base}/api/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(params),
    });
  }
  const path = `${host.base}/api/channels/${encodeURIComponent(String(params.channel))}/${method}`;
  const query = new URLSearchParams();
  if (method === 'history') {
    const { limit, since } = params as { limit?: number; since?: Position };
    if (limit !== undefined) query.set('limit', String(limit));
    if (since !== undefined) {
      query.set('since', String(since.offset));
      query.set('epoch', since.epoch);
    }
  }
  const search = query.toString();
  return fetchJson(host, search === '' ? path : `${path}?${search}`, { headers, cache: 'no-store' });
}
