/**
 * Test support: what a token gets on every transport at once (WebSocket `connect`, SSE, poll and
 * `POST /api/publish`), so a test states "refused everywhere" or "accepted everywhere" in one line.
 */
import { api, type TestHub } from './hub.ts';
import { WsTestClient } from './ws-client.ts';

export interface TokenOutcome {
  /** The close code, `error <code>` for an error reply, or `connected`. */
  readonly ws: number | string;
  readonly sse: number;
  readonly poll: number;
  readonly api: number;
}

/** A refused token: WebSocket close 4001, HTTP 401 on SSE, poll and the API. */
export const REFUSED: TokenOutcome = { ws: 4001, sse: 401, poll: 401, api: 401 };
/** An accepted token (on channel `c`, which the test tokens permit). */
export const ACCEPTED: TokenOutcome = { ws: 'connected', sse: 200, poll: 200, api: 200 };
/** A token the hub could not check (its JWKS is unreachable): retry later, never "unauthorized". */
export const UNCHECKED: TokenOutcome = { ws: 1013, sse: 503, poll: 503, api: 503 };

export async function tryEverywhere(hub: TestHub, jwt: string): Promise<TokenOutcome> {
  const client = new WsTestClient(hub.wsUrl);
  await client.opened;
  const reply = client.call('connect', { token: jwt }).catch(() => undefined);
  const first = await Promise.race([reply, client.closed]);
  // A refused connect is answered with its error, then the connection closes: report the close.
  const refused = typeof first !== 'number' && first?.error !== undefined;
  const ws = typeof first === 'number' ? first : refused ? await client.closed : 'connected';
  if (ws === 'connected') client.close();
  const q = new URLSearchParams({ channel: 'c', token: jwt, timeout: '0' });
  const sse = await fetch(`${hub.url}/sse?${q}`);
  await sse.body?.cancel();
  const poll = await fetch(`${hub.url}/poll?${q}`);
  await poll.arrayBuffer();
  const pub = await api(hub, 'POST', '/api/publish', { channel: 'c', data: 1 }, jwt);
  return { ws, sse: sse.status, poll: poll.status, api: pub.status };
}
