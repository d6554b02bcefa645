/**
 * Micro-benchmark of client token checks, side by side in one run: jose's `jwtVerify` alone with
 * the HS256 secret (the floor), and `TokenVerifier.verify` for HS256 (with and without revocations
 * held), RS256, ES256 and EdDSA from configured keys.
 *   node --conditions=herald-source --import tsx packages/server/bench/token-verify.ts
 */
import { SignJWT, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { TokenVerifier } from '../src/auth/tokens.ts';

const N = Number(process.env.N ?? 5_000);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const secret = 'bench-secret-0123456789abcdef0123456789abcdef';
const key = new TextEncoder().encode(secret);
const claims = { channels: ['orders:*'], publish: [] };

const cases: Array<[string, () => Promise<unknown>]> = [];

/** Verifications per second of one round of `N`. */
async function once(verify: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < N; i++) await verify();
  return (N / (performance.now() - started)) * 1000;
}

const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().sign(key);
const base = { leewaySeconds: 0, anonymousChannels: [] };
cases.push(['jose jwtVerify, HS256 (floor)', () => jwtVerify(hs, key, { algorithms: ['HS256'] })]);
const plain = new TokenVerifier({ ...base, secret });
cases.push(['TokenVerifier, HS256', () => plain.verify(hs)]);
const revoked = new Set(Array.from({ length: 10_000 }, (_, i) => `user-${i}`));
const withRevocations = new TokenVerifier({
  ...base,
  secret,
  revocations: { refuses: (c) => revoked.has(c.userId) },
});
cases.push(['TokenVerifier, HS256, 10,000 users revoked', () => withRevocations.verify(hs)]);
for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
  const pair = await generateKeyPair(alg, { extractable: true });
  const verifier = new TokenVerifier({ ...base, publicKey: JSON.stringify(await exportJWK(pair.publicKey)) });
  const jwt = await new SignJWT(claims)
    .setProtectedHeader({ alg })
    .setSubject('alice')
    .setIssuedAt()
    .sign(pair.privateKey);
  cases.push([`TokenVerifier, ${alg} (configured JWK)`, () => verifier.verify(jwt)]);
}

// Rounds alternate between the cases, so a noisy neighbour hurts them alike; the median is shown.
const results = cases.map(() => [] as number[]);
for (const [, verify] of cases) for (let i = 0; i < 1000; i++) await verify();
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, [, verify]] of cases.entries()) results[i]?.push(await once(verify));
}
for (const [i, [name]] of cases.entries()) {
  const sorted = (results[i] ?? []).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  process.stdout.write(
    `${name.padEnd(44)} ${Math.round(median).toString().padStart(8)} verifications/s (median of ${ROUNDS})\n`,
  );
}
