/**
 * Which key checks a token's signature. The key is chosen by the token's `alg` alone, among the
 * keys configured for that algorithm: HS256 only ever meets the shared secret, RS256 only RSA
 * public keys, ES256 only P-256 keys, EdDSA only Ed25519 keys. So a token cannot pick the key type
 * (the RS256/HS256 confusion, a public key used as an HMAC secret), and keys a token offers itself
 * (`jwk`, `jku`, `x5u`) are never looked at. `kid` only narrows the configured keys.
 *
 * Order for public-key tokens: the configured keys first (every one whose `kid` fits), then the
 * remote JWK set. A key that cannot verify the signature passes to the next; any other failure
 * (expired, wrong `aud`) ends the check, since the signature was good.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { remoteKeys, type JwksOptions, type RemoteKeys } from './jwks.js';
import { PUBLIC_KEY_ALGORITHMS, candidateKeys, parsePublicKeys, type PublicKeyEntry } from './public-keys.js';

export interface TokenKeysOptions {
  /** HS256 secret; without it HS256 tokens are refused. */
  readonly secret?: string;
  /** PEM public key, JWK or JWK set (text). */
  readonly publicKey?: string;
  readonly jwks?: JwksOptions;
}

/** The claim checks jose makes after the signature (exp, nbf, aud, iss). */
export type ClaimChecks = Omit<JWTVerifyOptions, 'algorithms'>;

export class TokenKeys {
  /** The `alg` values a token may carry. */
  readonly algorithms: ReadonlySet<string>;
  readonly #secret: Uint8Array | undefined;
  readonly #static: readonly PublicKeyEntry[];
  readonly #remote: RemoteKeys | undefined;

  /** Throws `PublicKeyError` for a configured key that cannot be used. */
  constructor(options: TokenKeysOptions) {
    this.#secret = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret);
    this.#static = options.publicKey === undefined ? [] : parsePublicKeys(options.publicKey);
    this.#remote = options.jwks === undefined ? undefined : remoteKeys(options.jwks);
    const algorithms = new Set<string>();
    if (this.#secret !== undefined) algorithms.add('HS256');
    for (const entry of this.#static) algorithms.add(entry.alg);
    if (this.#remote !== undefined) for (const alg of PUBLIC_KEY_ALGORITHMS) algorithms.add(alg);
    this.algorithms = algorithms;
  }

  /** The remote set's fetch count, when one is configured (tests). */
  get remoteFetches(): number | undefined {
    return this.#remote?.fetches;
  }

  /** Fetches the remote set once at start; true when there is none or it came. */
  async prefetch(): Promise<boolean> {
    return this.#remote === undefined ? true : this.#remote.prefetch();
  }

  /** Verifies signature and claims; throws jose's errors, or HeraldError `keys_unavailable`. */
  async verify(token: string, checks: ClaimChecks): Promise<JWTPayload> {
    const header = decodeProtectedHeader(token);
    const alg = header.alg;
    if (typeof alg !== 'string' || !this.algorithms.has(alg)) {
      throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
    }
    // jose checks `alg` against this list once more, and the key's type against `alg`.
    const options: JWTVerifyOptions = { ...checks, algorithms: [alg] };
    if (alg === 'HS256') return (await jwtVerify(token, this.#secret as Uint8Array, options)).payload;
    let lastError: unknown = new errors.JWKSNoMatchingKey();
    for (const entry of candidateKeys(this.#static, alg, header.kid)) {
      try {
        return await verifyWith(token, entry.key, options);
      } catch (error) {
        if (!(error instanceof errors.JWSSignatureVerificationFailed)) throw error;
        lastError = error;
      }
    }
    if (this.#remote === undefined) throw lastError;
    try {
      return (await jwtVerify(token, this.#remote.getKey, options)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      // Several keys of the set fit (no `kid` in the token): each is tried in turn.
      for await (const key of error as errors.JWKSMultipleMatchingKeys & AsyncIterable<VerificationKey>) {
        try {
          return await verifyWith(token, key, options);
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }
}

/** A key jose verifies with: a CryptoKey from a JWK set, a node KeyObject, or the HS256 secret. */
type VerificationKey = Exclude<Parameters<typeof jwtVerify>[1], (...args: never[]) => unknown>;

async function verifyWith(token: string, key: VerificationKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  return (await jwtVerify(token, key, options)).payload;
}
