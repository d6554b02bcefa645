/**
 * Test support: an identity provider's JWKS endpoint on loopback. The test swaps the key set (a
 * rotation), makes it fail, and counts the requests the hub made, over real HTTP.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

export interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256' | 'EdDSA';
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

export async function signingKey(alg: SigningKey['alg'], kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, jwk };
}

/** A token signed with `key` (its `kid` in the header unless `kid: null`), with `iat` now unless given. */
export async function signWith(
  key: SigningKey,
  claims: Record<string, unknown> = {},
  header: { kid?: string | null; [name: string]: unknown } = {},
): Promise<string> {
  const { kid = key.kid, ...rest } = header;
  const { sub = 'alice', ...body } = { channels: ['*'], publish: ['*'], ...claims } as Record<string, unknown>;
  let jwt = new SignJWT(body)
    .setProtectedHeader({ alg: key.alg, ...(kid === null ? {} : { kid }), ...rest })
    .setSubject(String(sub));
  if (!('iat' in claims)) jwt = jwt.setIssuedAt();
  return jwt.sign(key.privateKey);
}

export class JwksServer {
  readonly #server: Server;
  /** Requests for the set that reached this server. */
  requests = 0;
  /** What the endpoint answers: the keys, or an HTTP status to fail with. */
  keys: JWK[] = [];
  failWith: number | undefined;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(keys: readonly SigningKey[] = []): Promise<JwksServer> {
    const holder: { self?: JwksServer } = {};
    const server = createServer((_req, res) => {
      const self = holder.self;
      if (self === undefined) return void res.end();
      self.requests++;
      if (self.failWith !== undefined) {
        res.writeHead(self.failWith).end('unavailable');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: self.keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const self = new JwksServer(server);
    self.keys = keys.map((k) => k.jwk);
    holder.self = self;
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  serve(keys: readonly SigningKey[]): void {
    this.keys = keys.map((k) => k.jwk);
    this.failWith = undefined;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
