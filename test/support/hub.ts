/**
 * Test support: a real hub on a loopback port, tokens signed with its secret, and thin clients
 * over real sockets (`ws`, `eventsource`, fetch). Nothing here mocks the hub.
 */
import { SignJWT } from 'jose';
import { HeraldServer, type HeraldOptions } from '@herald/server';

export const API_KEY = 'test-api-key-0123456789abcdef';
export const JWT_SECRET = 'test-jwt-secret-0123456789abcdef0123456789';

export interface TestHub {
  readonly server: HeraldServer;
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startHub(options: Partial<HeraldOptions> = {}): Promise<TestHub> {
  return listening(new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, ...options }));
}

/** Starts `server` on a free loopback port; its addresses and `close` as a TestHub. */
export async function listening(server: HeraldServer): Promise<TestHub> {
  const { port } = await server.listen(0, '127.0.0.1');
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    port,
    close: () => server.close(),
  };
}

export interface TokenClaims {
  sub?: string;
  channels?: string[];
  publish?: string[];
  info?: unknown;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  secret?: string;
  [claim: string]: unknown;
}

/** An HS256 token; `iat` is now unless `iat` is given (a number, or undefined for none). */
export async function token(claims: TokenClaims = {}): Promise<string> {
  const { sub = 'alice', expiresIn, secret = JWT_SECRET, iat, ...rest } = claims;
  const body: Record<string, unknown> = { channels: ['*'], publish: ['*'], ...rest };
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  let jwt = new SignJWT(body).setProtectedHeader({ alg: 'HS256' }).setSubject(sub);
  if (!('iat' in claims)) jwt = jwt.setIssuedAt();
  else if (typeof iat === 'number') jwt = jwt.setIssuedAt(iat);
  if (expiresIn !== undefined) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** Anything with the hub's base URL: a TestHub, or the stable front of a restartable one. */
export type HubAddress = Pick<TestHub, 'url'>;

export async function api(
  hub: HubAddress,
  method: string,
  path: string,
  body?: unknown,
  bearer = API_KEY,
): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(hub.url + path, {
    method,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

export async function publish(
  hub: HubAddress,
  channel: string,
  data: unknown,
  extra: Record<string, unknown> = {},
): Promise<{ offset: number; epoch: string }> {
  const answer = await api(hub, 'POST', '/api/publish', { channel, data, ...extra });
  if (answer.status !== 200) throw new Error(`publish failed: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** Resolves when `predicate` holds, polling every 10 ms; rejects after `timeoutMs` with `what`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
