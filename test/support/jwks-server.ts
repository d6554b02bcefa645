/**
 * Test support: an identity provider's JWKS endpoint on loopback. The test swaps the key set (a
 * rotation), makes it fail, and counts the requests the hub made, over real HTTP. Also the keys
 * tests sign with, made so that Node 20 cannot deadlock on them (`generatedKeyPair`).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, generateKeyPairSync } from 'node:crypto';
import { promisify } from 'node:util';
import { SignJWT, importPKCS8, type CryptoKey, type JWK } from 'jose';

export interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256' | 'EdDSA';
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

/** How node's generator encodes what it makes (`generatedKeyPair`, `pemKeyPair`). */
const SPKI_PEM = { type: 'spki', format: 'pem' } as const;
const PKCS8_PEM = { type: 'pkcs8', format: 'pem' } as const;

/** How node's generator makes a key of each algorithm. */
const KEY_TYPES = {
  RS256: { type: 'rsa', options: { modulusLength: 2048 } },
  ES256: { type: 'ec', options: { namedCurve: 'prime256v1' } },
  EdDSA: { type: 'ed25519', options: {} },
} as const;

const generate = promisify(generateKeyPair) as unknown as (
  type: string,
  options: Record<string, unknown>,
) => Promise<{ publicKey: JWK; privateKey: string }>;

/**
 * A new key pair, its public half as a JWK. Node's generator encodes both halves itself (a JWK and
 * a PKCS#8 PEM); the key that signs is imported from the PEM.
 *
 * Why not generate KeyObjects or CryptoKeys and export them: on Node 20, exporting a generated RSA
 * key as a JWK can deadlock the process. The key shares a lock with the generator's job, the
 * export holds that lock while it allocates, and a garbage collection there that frees the
 * finished job takes the same lock in the job's destructor. Seen under load with gdb: the main
 * thread waiting in `~KeyGenJob<RsaKeyGenTraits>` inside `KeyObjectHandle::ExportJWK`, every
 * other thread idle; it hung test/reliability/auth-attacks.test.ts in 4 of 358 runs beside other
 * test files. jose's `exportJWK` makes that export, and so does jose's signing with a KeyObject
 * on Node 20 (it converts the key through a JWK). A key imported from its PEM shares nothing with
 * a job, and the job encodes its keys while it is still alive.
 */
export async function generatedKeyPair(alg: SigningKey['alg']): Promise<{ jwk: JWK; privateKey: CryptoKey }> {
  const { type, options } = KEY_TYPES[alg];
  const pair = await generate(type, {
    ...options,
    publicKeyEncoding: { format: 'jwk' },
    privateKeyEncoding: PKCS8_PEM,
  });
  return { jwk: pair.publicKey, privateKey: await importPKCS8(pair.privateKey, alg, { extractable: true }) };
}

/**
 * A key pair as PEM text (SPKI, PKCS#8), encoded by node's generator itself: a key generated as a
 * KeyObject and exported afterwards can deadlock Node 20 (`generatedKeyPair`).
 */
export function pemKeyPair(spec: { rsa: number } | { ec: string }): { publicKey: string; privateKey: string } {
  const [publicKeyEncoding, privateKeyEncoding] = [SPKI_PEM, PKCS8_PEM];
  return 'rsa' in spec
    ? generateKeyPairSync('rsa', { modulusLength: spec.rsa, publicKeyEncoding, privateKeyEncoding })
    : generateKeyPairSync('ec', { namedCurve: spec.ec, publicKeyEncoding, privateKeyEncoding });
}

export async function signingKey(alg: SigningKey['alg'], kid: string): Promise<SigningKey> {
  const { jwk, privateKey } = await generatedKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...jwk, kid, alg, use: 'sig' } };
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
