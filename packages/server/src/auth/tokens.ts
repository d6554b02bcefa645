/**
 * Client token verification (PROTOCOL.md section 3): HS256 JWTs via `jose`, turned into the
 * connection's Credentials. Every refusal is a HeraldError('unauthorized') with a reason that
 * never includes the token itself.
 */
import { HeraldError, compilePatterns, isValidPattern, type ChannelMatcher } from '@herald/protocol';
import { errors, jwtVerify, type JWTPayload } from 'jose';
import type { Credentials } from '../core/credentials.js';

export interface TokenVerifierOptions {
  /** HS256 secret shared with the application backend. */
  readonly secret: string;
  /** Seconds of grace after `exp` (0 to 60). */
  readonly leewaySeconds: number;
  /** Patterns any client, with or without a token, may subscribe to. */
  readonly anonymousChannels: readonly string[];
  readonly audience?: string;
  readonly issuer?: string;
  readonly now?: () => number;
}

/** Tokens longer than this are refused before any parsing. */
const MAX_TOKEN_LENGTH = 8192;

/** Shared by every anonymous session rather than a closure each. */
const NO_CHANNEL: ChannelMatcher = () => false;

export class TokenVerifier {
  readonly #key: Uint8Array;
  readonly #options: TokenVerifierOptions;
  readonly #anonymous: ChannelMatcher;
  /** The same for every anonymous client, so shared rather than an object per session. */
  readonly #anonymousCredentials: Credentials;
  readonly #now: () => number;

  constructor(options: TokenVerifierOptions) {
    this.#key = new TextEncoder().encode(options.secret);
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
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'],
        clockTolerance: this.#options.leewaySeconds,
        currentDate: new Date(this.#now()),
        ...(this.#options.audience === undefined ? {} : { audience: this.#options.audience }),
        ...(this.#options.issuer === undefined ? {} : { issuer: this.#options.issuer }),
      }));
    } catch (error) {
      throw new HeraldError('unauthorized', describeJoseError(error));
    }
    return this.#credentials(payload);
  }

  #credentials(payload: JWTPayload): Credentials {
    const { sub, exp, channels, publish, info } = payload as JWTPayload & Record<string, unknown>;
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 200) {
      throw new HeraldError('unauthorized', 'token has no valid "sub" claim');
    }
    const subscribePatterns = patternsClaim(channels, 'channels');
    const anonymous = this.#anonymous;
    const own = compilePatterns(subscribePatterns);
    const canSubscribe: ChannelMatcher = (channel) => own(channel) || anonymous(channel);
    const credentials: Credentials = {
      userId: sub,
      canSubscribe,
      canPublish: compilePatterns(patternsClaim(publish, 'publish')),
      ...(info === undefined ? {} : { info, infoJson: JSON.stringify(info) }),
      ...(typeof exp === 'number' ? { expiresAt: (exp + this.#options.leewaySeconds) * 1000 } : {}),
    };
    return credentials;
  }
}

function patternsClaim(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((p) => isValidPattern(p))) {
    throw new HeraldError('unauthorized', `token claim "${name}" must be a list of channel patterns`);
  }
  return value as string[];
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim "${error.claim}" is not valid`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature is not valid';
  return 'token is malformed';
}
