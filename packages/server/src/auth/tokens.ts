/**
 * Client token verification (PROTOCOL.md section 3, extended in docs/protocol-extensions.md):
 * JWTs signed with the HS256 secret, configured public keys or a JWKS URL (token-keys.ts), via
 * `jose`, turned into the connection's Credentials. Then the hub's own rules: the maximum token
 * lifetime when one is configured, and revocations. Every refusal is a HeraldError
 * ('unauthorized', or 'keys_unavailable' when the JWKS could not be fetched) with a reason that
 * never includes the token itself.
 */
import { HeraldError, compilePatterns, isValidChannel, isValidPattern, type ChannelMatcher } from '@herald/protocol';
import { errors, type JWTPayload } from 'jose';
import type { Credentials } from '../core/credentials.js';
import type { JwksOptions } from './jwks.js';
import { MAX_JTI_LENGTH } from '../revocation/revocation.js';
import { TokenKeys, type ClaimChecks } from './token-keys.js';

export interface TokenVerifierOptions {
  /** HS256 secret shared with the application backend; without it HS256 tokens are refused. */
  readonly secret?: string;
  /** PEM public key, JWK or JWK set (text) for RS256, ES256 and EdDSA tokens. */
  readonly publicKey?: string;
  /** A remote JWK set for RS256, ES256 and EdDSA tokens. */
  readonly jwks?: JwksOptions;
  /** Seconds of grace after `exp` (0 to 60). */
  readonly leewaySeconds: number;
  /**
   * Seconds a token may be used after its `iat`; 0 = no limit. When set, tokens must carry `iat`,
   * not in the future, and a connection ends (4003) once its token is that old.
   */
  readonly maxLifetimeSeconds?: number;
  /** Patterns any client, with or without a token, may subscribe to. */
  readonly anonymousChannels: readonly string[];
  readonly audience?: string;
  readonly issuer?: string;
  /** Revoked tokens (revocation/revocations.ts); none when absent. */
  readonly revocations?: { refuses(credentials: Credentials): boolean };
  readonly now?: () => number;
}

/** Tokens longer than this are refused before any parsing. */
const MAX_TOKEN_LENGTH = 8192;

/** Shared by every anonymous session rather than a closure each. */
const NO_CHANNEL: ChannelMatcher = () => false;

export class TokenVerifier {
  readonly #keys: TokenKeys;
  readonly #options: TokenVerifierOptions;
  readonly #anonymous: ChannelMatcher;
  /** The same for every anonymous client, so shared rather than an object per session. */
  readonly #anonymousCredentials: Credentials;
  readonly #now: () => number;

  constructor(options: TokenVerifierOptions) {
    this.#keys = new TokenKeys({
      ...(options.secret === undefined ? {} : { secret: options.secret }),
      ...(options.publicKey === undefined ? {} : { publicKey: options.publicKey }),
      ...(options.jwks === undefined ? {} : { jwks: options.jwks }),
    });
    this.#options = options;
    this.#anonymous = compilePatterns(options.anonymousChannels);
    this.#anonymousCredentials = Object.freeze({ userId: '', canSubscribe: this.#anonymous, canPublish: NO_CHANNEL });
    this.#now = options.now ?? Date.now;
  }

  /** Whether anonymous clients may connect at all. */
  get allowsAnonymous(): boolean {
    return this.#options.anonymousChannels.length > 0;
  }

  anonymous(): Credentials {
    return this.#anonymousCredentials;
  }

  /** Credentials for a client without a token; throws `unauthorized` when anonymous clients are not allowed. */
  verifyAnonymous(): Credentials {
    if (!this.allowsAnonymous) throw new HeraldError('unauthorized', 'a token is required');
    return this.anonymous();
  }

  /** Credentials for a token, or for an anonymous client when `token` is undefined. */
  async verify(token: string | undefined): Promise<Credentials> {
    if (token === undefined) return this.verifyAnonymous();
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new HeraldError('unauthorized', 'token is malformed');
    }
    const now = this.#now();
    const checks: ClaimChecks = {
      clockTolerance: this.#options.leewaySeconds,
      currentDate: new Date(now),
      ...(this.#options.audience === undefined ? {} : { audience: this.#options.audience }),
      ...(this.#options.issuer === undefined ? {} : { issuer: this.#options.issuer }),
    };
    let payload: JWTPayload;
    try {
      payload = await this.#keys.verify(token, checks);
    } catch (error) {
      if (error instanceof HeraldError) throw error;
      throw new HeraldError('unauthorized', describeJoseError(error));
    }
    const credentials = this.#credentials(payload, now);
    if (this.#options.revocations?.refuses(credentials) === true)
      throw new HeraldError('unauthorized', 'token revoked');
    return credentials;
  }

  /** The `alg` values accepted (HS256 with a secret; RS256, ES256, EdDSA with public keys). */
  get algorithms(): ReadonlySet<string> {
    return this.#keys.algorithms;
  }

  /** Fetches the JWKS once at start, when one is configured; false when that failed. */
  prefetchKeys(): Promise<boolean> {
    return this.#keys.prefetch();
  }

  /** How often the JWKS was fetched (tests); undefined without a JWKS URL. */
  get jwksFetches(): number | undefined {
    return this.#keys.remoteFetches;
  }

  #credentials(payload: JWTPayload, now: number): Credentials {
    const { sub, exp, iat, jti, channels, publish, info, subs } = payload as JWTPayload & Record<string, unknown>;
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 200) {
      throw new HeraldError('unauthorized', 'token has no valid "sub" claim');
    }
    if (jti !== undefined && (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH)) {
      throw new HeraldError('unauthorized', `token claim "jti" must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
    }
    // jose has checked that `iat` and `exp`, when present, are numbers.
    const expiresAt = this.#expiresAt(exp as number | undefined, iat as number | undefined, now);
    const subscribePatterns = patternsClaim(channels, 'channels');
    const anonymous = this.#anonymous;
    const own = compilePatterns(subscribePatterns);
    const serverSubs = subsClaim(subs);
    // A channel the token subscribes the connection to is one it may subscribe to itself (resume).
    const canSubscribe: ChannelMatcher =
      serverSubs.length === 0
        ? (channel) => own(channel) || anonymous(channel)
        : (channel) => own(channel) || anonymous(channel) || serverSubs.includes(channel);
    const credentials: Credentials = {
      userId: sub,
      canSubscribe,
      canPublish: compilePatterns(patternsClaim(publish, 'publish')),
      ...(info === undefined ? {} : { info, infoJson: JSON.stringify(info) }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(typeof jti === 'string' ? { jti } : {}),
      ...(typeof iat === 'number' ? { issuedAt: iat } : {}),
      ...(serverSubs.length === 0 ? {} : { subs: serverSubs }),
    };
    return credentials;
  }

  /**
   * When the token stops being usable (epoch ms): its `exp`, and with a maximum lifetime also
   * `iat` plus that lifetime, each plus the leeway. Refuses a token past either, and (with a
   * maximum lifetime) one without `iat` or with `iat` in the future, which could outlive it.
   */
  #expiresAt(exp: number | undefined, iat: number | undefined, now: number): number | undefined {
    const leeway = this.#options.leewaySeconds;
    const max = this.#options.maxLifetimeSeconds ?? 0;
    const byExp = exp === undefined ? undefined : (exp + leeway) * 1000;
    if (max === 0) return byExp;
    if (iat === undefined)
      throw new HeraldError('unauthorized', 'token has no "iat" claim (the hub limits token lifetimes)');
    if (iat * 1000 > now + leeway * 1000) throw new HeraldError('unauthorized', 'token claim "iat" is in the future');
    const byAge = (iat + max + leeway) * 1000;
    if (byAge <= now) throw new HeraldError('unauthorized', 'token is older than the maximum token lifetime');
    return byExp === undefined ? byAge : Math.min(byExp, byAge);
  }
}

function patternsClaim(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((p) => isValidPattern(p))) {
    throw new HeraldError('unauthorized', `token claim "${name}" must be a list of channel patterns`);
  }
  return value as string[];
}

/** Channels a `subs` claim subscribes every connection of the token to (at most MAX_SUBS_CLAIM). */
const MAX_SUBS_CLAIM = 32;

function subsClaim(value: unknown): string[] {
  if (value === undefined) return [];
  if (
    !Array.isArray(value) ||
    value.length > MAX_SUBS_CLAIM ||
    !value.every((c) => isValidChannel(c)) ||
    new Set(value).size !== value.length
  ) {
    throw new HeraldError(
      'unauthorized',
      `token claim "subs" must be a list of at most ${MAX_SUBS_CLAIM} distinct channel names`,
    );
  }
  return value as string[];
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no configured key matches the token ("kid")';
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim "${error.claim}" is not valid`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature is not valid';
  return 'token is malformed';
}
