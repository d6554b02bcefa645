/**
 * Configured public keys for client tokens (docs/configuration.md, `jwtPublicKey`): one PEM
 * (SPKI) key, one JWK, or a JWK set, parsed once at start. Each key gets the one algorithm its
 * type allows (RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA), so a token can never make the hub
 * use a key with an algorithm of another family. Private keys are refused: the hub only verifies.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';

/** The asymmetric algorithms the hub accepts, beside HS256. */
export const PUBLIC_KEY_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type PublicKeyAlgorithm = (typeof PUBLIC_KEY_ALGORITHMS)[number];

export interface PublicKeyEntry {
  readonly key: KeyObject;
  readonly alg: PublicKeyAlgorithm;
  /** Absent for a PEM key: it then verifies tokens of its algorithm whatever their `kid`. */
  readonly kid?: string;
}

/** Thrown for a key text that cannot be used; the message never quotes the key. */
export class PublicKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PublicKeyError';
  }
}

/** RSA keys shorter than this are refused (jose refuses them at verification too). */
const MIN_RSA_BITS = 2048;

/** Parses PEM, a JWK or a JWK set (`{"keys": [...]}`) into verification keys. */
export function parsePublicKeys(text: string): PublicKeyEntry[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    if (/PRIVATE KEY-----/.test(trimmed)) throw new PublicKeyError('holds a private key; give the public key only');
    let key: KeyObject;
    try {
      key = createPublicKey(trimmed);
    } catch {
      throw new PublicKeyError('is not a readable PEM public key');
    }
    return [{ key, alg: algorithmOf(key) }];
  }
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    throw new PublicKeyError('must be a PEM public key, a JWK or a JWK set ({"keys": [...]})');
  }
  if (isObject(json) && Array.isArray(json.keys)) {
    if (json.keys.length === 0) throw new PublicKeyError('is a JWK set without keys');
    return json.keys.map((jwk, i) => fromJwk(jwk, `key ${i + 1} of the JWK set`));
  }
  return [fromJwk(json, 'the JWK')];
}

function fromJwk(jwk: unknown, what: string): PublicKeyEntry {
  if (!isObject(jwk)) throw new PublicKeyError(`${what} is not a JSON object`);
  if ('d' in jwk || jwk.kty === 'oct')
    throw new PublicKeyError(`${what} is a private or secret key; give the public key only`);
  if (jwk.use !== undefined && jwk.use !== 'sig')
    throw new PublicKeyError(`${what} is not for signatures ("use": "sig")`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    throw new PublicKeyError(`${what} is not a readable public JWK`);
  }
  const alg = algorithmOf(key);
  if (jwk.alg !== undefined && jwk.alg !== alg) {
    throw new PublicKeyError(`${what} says "alg": ${JSON.stringify(jwk.alg)}, but its key type allows only ${alg}`);
  }
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length === 0)) {
    throw new PublicKeyError(`${what} has a "kid" that is not a non-empty string`);
  }
  return typeof jwk.kid === 'string' ? { key, alg, kid: jwk.kid } : { key, alg };
}

/** The one algorithm a key type is used with. */
function algorithmOf(key: KeyObject): PublicKeyAlgorithm {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if ((details?.modulusLength ?? 0) < MIN_RSA_BITS)
        throw new PublicKeyError(`is an RSA key shorter than ${MIN_RSA_BITS} bits`);
      return 'RS256';
    case 'ec':
      if (details?.namedCurve !== 'prime256v1')
        throw new PublicKeyError('is an EC key on a curve other than P-256 (ES256)');
      return 'ES256';
    case 'ed25519':
      return 'EdDSA';
    default:
      throw new PublicKeyError(
        `is a ${key.asymmetricKeyType ?? 'unknown'} key; RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA) are accepted`,
      );
  }
}

/**
 * The configured keys that may have signed a token with this header: same algorithm, and the
 * same `kid` when both the token and the key name one.
 */
export function candidateKeys(keys: readonly PublicKeyEntry[], alg: string, kid: unknown): PublicKeyEntry[] {
  return keys.filter((k) => k.alg === alg && (k.kid === undefined || kid === undefined || k.kid === kid));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
