/**
 * Public-key client tokens (docs/configuration.md, "Client tokens"): RS256, ES256 and EdDSA with a
 * configured key (PEM, JWK, JWK set) or a JWKS URL, beside HS256, on every transport. The JWKS is
 * a real HTTP server on loopback: caching, refetch on an unknown `kid` with its cooldown, rotation,
 * and an unreachable set (tokens get "try again later", never "unauthorized").
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OptionsError } from '@herald/server';
import { exportSPKI } from 'jose';
import { JWT_SECRET, sleep, startHub, token } from '../../../test/support/hub.ts';
import { JwksServer, pemKeyPair, signWith, signingKey, type SigningKey } from '../../../test/support/jwks-server.ts';
import { ACCEPTED, REFUSED, UNCHECKED, tryEverywhere } from '../../../test/support/token-check.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;

async function pem(key: SigningKey): Promise<string> {
  const { importJWK } = await import('jose');
  return exportSPKI((await importJWK(key.jwk, key.alg, { extractable: true })) as CryptoKey);
}

describe('configured public keys', () => {
  it('accepts RS256, ES256 and EdDSA tokens from a PEM key, a JWK or a JWK set, on every transport', async () => {
    for (const alg of ALGORITHMS) {
      const key = await signingKey(alg, `${alg}-1`);
      const { kid: _kid, ...jwkWithoutKid } = key.jwk;
      for (const [form, text] of [
        ['PEM', await pem(key)],
        ['JWK', JSON.stringify(jwkWithoutKid)],
        ['JWK set', JSON.stringify({ keys: [key.jwk] })],
      ] as const) {
        const hub = await startHub({ jwtSecret: undefined, jwtPublicKey: text });
        try {
          assert.deepEqual([...hub.server.context.tokens.algorithms], [alg], `${alg} ${form}`);
          assert.deepEqual(await tryEverywhere(hub, await signWith(key)), ACCEPTED, `${alg} from a ${form}`);
          // No secret configured: HS256 is refused, even with the secret other hubs use.
          assert.deepEqual(await tryEverywhere(hub, await token()), REFUSED, `HS256 beside a ${form}`);
        } finally {
          await hub.close();
        }
      }
    }
  });

  it('keeps HS256 beside a public key when a secret is set, and checks aud and iss on both', async () => {
    const key = await signingKey('RS256', 'k');
    const hub = await startHub({
      jwtPublicKey: await pem(key),
      jwtAudience: 'herald',
      jwtIssuer: 'https://idp.example',
    });
    try {
      assert.deepEqual([...hub.server.context.tokens.algorithms].sort(), ['HS256', 'RS256']);
      const claims = { aud: 'herald', iss: 'https://idp.example' };
      assert.deepEqual(await tryEverywhere(hub, await signWith(key, claims)), ACCEPTED, 'RS256');
      assert.deepEqual(await tryEverywhere(hub, await token(claims)), ACCEPTED, 'HS256');
      assert.deepEqual(
        await tryEverywhere(hub, await signWith(key, { iss: 'https://idp.example' })),
        REFUSED,
        'no aud',
      );
      assert.deepEqual(await tryEverywhere(hub, await signWith(key, { aud: 'herald' })), REFUSED, 'no iss');
      assert.deepEqual(await tryEverywhere(hub, await signWith(key, { ...claims, exp: 1 })), REFUSED, 'expired');
    } finally {
      await hub.close();
    }
  });

  it('picks keys of a JWK set by kid, tries each when the token names none, and refuses an unknown kid', async () => {
    const one = await signingKey('RS256', 'one');
    const two = await signingKey('RS256', 'two');
    const stranger = await signingKey('RS256', 'two');
    const hub = await startHub({ jwtSecret: undefined, jwtPublicKey: JSON.stringify({ keys: [one.jwk, two.jwk] }) });
    try {
      assert.deepEqual(await tryEverywhere(hub, await signWith(two)), ACCEPTED, 'kid two');
      assert.deepEqual(await tryEverywhere(hub, await signWith(two, {}, { kid: null })), ACCEPTED, 'no kid');
      assert.deepEqual(await tryEverywhere(hub, await signWith(two, {}, { kid: 'one' })), REFUSED, 'the wrong kid');
      assert.deepEqual(await tryEverywhere(hub, await signWith(two, {}, { kid: 'three' })), REFUSED, 'unknown kid');
      assert.deepEqual(await tryEverywhere(hub, await signWith(stranger)), REFUSED, 'a stranger using kid two');
    } finally {
      await hub.close();
    }
  });

  it('refuses keys it cannot use at start, naming the option and never quoting the key', async () => {
    // Encoded by the generator: exporting its KeyObjects can deadlock Node 20 (pemKeyPair).
    const rsaPrivate = pemKeyPair({ rsa: 2048 }).privateKey;
    const short = pemKeyPair({ rsa: 1024 }).publicKey;
    const p384 = pemKeyPair({ ec: 'secp384r1' }).publicKey;
    const rs = await signingKey('RS256', 'k');
    const cases: Array<[string, string, RegExp]> = [
      ['a private key', rsaPrivate, /private key/],
      ['RSA 1024', short, /shorter than 2048/],
      ['EC P-384', p384, /P-256/],
      ['a JWK whose alg does not fit its type', JSON.stringify({ ...rs.jwk, alg: 'ES256' }), /allows only RS256/],
      ['a private JWK', JSON.stringify({ ...rs.jwk, d: 'AAAA' }), /private or secret/],
      ['an HMAC JWK', JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }), /private or secret/],
      ['an encryption key', JSON.stringify({ ...rs.jwk, use: 'enc' }), /signatures/],
      ['an empty set', '{"keys": []}', /without keys/],
      ['garbage', 'hello', /PEM public key, a JWK or a JWK set/],
    ];
    for (const [name, text, message] of cases) {
      await assert.rejects(startHub({ jwtPublicKey: text }), (error: unknown) => {
        assert.ok(error instanceof OptionsError, name);
        assert.match(error.message, /"jwtPublicKey"/, name);
        assert.match(error.message, message, name);
        if (text.length > 60) assert.ok(!error.message.includes(text.slice(30, 60)), `${name}: the key is not quoted`);
        return true;
      });
    }
    await assert.rejects(startHub({ jwtSecret: undefined }), /"jwtSecret": set jwtSecret, jwtPublicKey or jwksUrl/);
    await assert.rejects(startHub({ jwksUrl: 'ftp://idp.example/jwks' }), /"jwksUrl": must be an http\(s\) URL/);
    await assert.rejects(startHub({ jwksCacheSeconds: 10, jwksCooldownSeconds: 20 }), /"jwksCooldownSeconds"/);
  });
});

describe('JWKS URL', () => {
  let jwks: JwksServer;
  let a: SigningKey;
  let b: SigningKey;
  before(async () => {
    a = await signingKey('RS256', 'a');
    b = await signingKey('ES256', 'b');
    jwks = await JwksServer.start([a]);
  });
  after(() => jwks.close());

  it('fetches the set at start, verifies from the cache, and defers an unknown kid within the cooldown without fetching', async () => {
    jwks.serve([a]);
    const before = jwks.requests;
    // The default cooldown (30 s) outlasts this test: nothing here may cause a second fetch.
    const hub = await startHub({ jwtSecret: undefined, jwksUrl: jwks.url });
    try {
      assert.equal(jwks.requests, before + 1, 'fetched once at start');
      for (let i = 0; i < 5; i++) assert.deepEqual(await tryEverywhere(hub, await signWith(a)), ACCEPTED);
      assert.equal(jwks.requests, before + 1, 'every token verified from the cached set');
      // Rotation: the provider publishes b. Within the cooldown a b token is not refused, only deferred.
      jwks.serve([a, b]);
      assert.deepEqual(await tryEverywhere(hub, await signWith(b)), UNCHECKED, 'b within the cooldown');
      // Tokens with made-up kids, all at once: no fetch at all within the cooldown, none accepted.
      const forger = await signingKey('RS256', 'x');
      const outcomes = await Promise.all(
        Array.from({ length: 30 }, async (_, i) =>
          tryEverywhere(hub, await signWith(forger, {}, { kid: `made-up-${i}` })),
        ),
      );
      for (const outcome of outcomes) assert.notDeepEqual(outcome, ACCEPTED);
      assert.equal(jwks.requests, before + 1, 'no fetch within the cooldown');
    } finally {
      await hub.close();
    }
  });

  it('refetches for an unknown kid once the cooldown is over, at most once per cooldown', async () => {
    jwks.serve([a]);
    const before = jwks.requests;
    const hub = await startHub({ jwtSecret: undefined, jwksUrl: jwks.url, jwksCooldownSeconds: 1 });
    try {
      jwks.serve([a, b]);
      await sleep(1100);
      assert.deepEqual(await tryEverywhere(hub, await signWith(b)), ACCEPTED, 'b after the cooldown');
      assert.equal(jwks.requests, before + 2, 'one fetch for the new kid');
      await sleep(1100);
      const forger = await signingKey('RS256', 'x');
      const fetched = jwks.requests;
      const started = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: 30 }, async (_, i) =>
          tryEverywhere(hub, await signWith(forger, {}, { kid: `made-up-${i}` })),
        ),
      );
      for (const outcome of outcomes) assert.notDeepEqual(outcome, ACCEPTED);
      // One fetch may go out per started second (the cooldown), however many tokens come.
      const allowed = 1 + Math.floor((Date.now() - started) / 1000);
      const spent = jwks.requests - fetched;
      assert.ok(spent <= allowed, `30 unknown kids cost ${spent} fetches (allowed ${allowed})`);
    } finally {
      await hub.close();
    }
  });

  it('follows a rotation that retires a key: the old key is refused once the set was fetched again', async () => {
    jwks.serve([a]);
    const hub = await startHub({
      jwtSecret: undefined,
      jwksUrl: jwks.url,
      jwksCacheSeconds: 1,
      jwksCooldownSeconds: 1,
    });
    try {
      const client = await WsTestClient.connect(hub.wsUrl, await signWith(a));
      jwks.serve([b]);
      await sleep(1100);
      assert.deepEqual(await tryEverywhere(hub, await signWith(b)), ACCEPTED, 'the new key');
      // a is no longer in the set the hub holds: deferred within the cooldown, then refused for good.
      const old = await tryEverywhere(hub, await signWith(a));
      assert.ok(old.ws === 1013 || old.ws === 4001, `old key: ${JSON.stringify(old)}`);
      await sleep(1100);
      assert.deepEqual(await tryEverywhere(hub, await signWith(a)), REFUSED, 'the retired key after a refetch');
      // A connection made with the retired key goes on until its token expires, as with HS256.
      assert.equal(client.closeCode, undefined);
      client.close();
    } finally {
      await hub.close();
    }
  });

  it('answers "try again later" while the set cannot be fetched, paces its attempts, and recovers', async () => {
    jwks.failWith = 500;
    const before = jwks.requests;
    const t0 = Date.now();
    const hub = await startHub({ jwtSecret: JWT_SECRET, jwksUrl: jwks.url });
    try {
      assert.equal(jwks.requests, before + 1, 'tried at start');
      const results = await Promise.all(Array.from({ length: 10 }, async () => tryEverywhere(hub, await signWith(a))));
      for (const result of results) assert.deepEqual(result, UNCHECKED);
      // One attempt per 5 s pause at most, however many tokens wait (a slow machine may see a second).
      const allowed = 1 + Math.floor((Date.now() - t0) / 5000);
      assert.ok(jwks.requests - before <= allowed, `${jwks.requests - before} fetches, ${allowed} allowed`);
      // HS256 does not depend on the JWKS.
      assert.deepEqual(await tryEverywhere(hub, await token()), ACCEPTED);
      jwks.serve([a]);
      await sleep(5_100);
      const failed = jwks.requests;
      assert.deepEqual(await tryEverywhere(hub, await signWith(a)), ACCEPTED, 'after the provider came back');
      assert.equal(jwks.requests, failed + 1, 'one fetch, then the cache');
    } finally {
      await hub.close();
    }
  });
});
