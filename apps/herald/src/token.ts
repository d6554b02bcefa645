/** Mints client JWTs for development and the docs' examples (`herald token`). */
import { SignJWT } from 'jose';

export interface TokenRequest {
  readonly secret: string;
  readonly sub: string;
  readonly channels?: readonly string[];
  readonly publish?: readonly string[];
  readonly info?: unknown;
  /** Seconds until `exp`; undefined = no expiry. */
  readonly ttlSeconds?: number;
  /** `aud` and `iss`, for hubs configured to require them (HERALD_JWT_AUDIENCE / HERALD_JWT_ISSUER). */
  readonly audience?: string;
  readonly issuer?: string;
}

export async function mintToken(request: TokenRequest): Promise<string> {
  const claims: Record<string, unknown> = {};
  if (request.channels !== undefined) claims.channels = request.channels;
  if (request.publish !== undefined) claims.publish = request.publish;
  if (request.info !== undefined) claims.info = request.info;
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(request.sub).setIssuedAt();
  if (request.ttlSeconds !== undefined) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + request.ttlSeconds);
  if (request.audience !== undefined) jwt = jwt.setAudience(request.audience);
  if (request.issuer !== undefined) jwt = jwt.setIssuer(request.issuer);
  return jwt.sign(new TextEncoder().encode(request.secret));
}
