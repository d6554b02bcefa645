/**
 * Auth attacks: forged and confused JWTs (alg none, RS/HS confusion with and without configured
 * public keys and a JWKS, key-type/kid mismatches, embedded and remote keys a token points to, tampering),
 * time and audience claims, channel patterns that try to escape their grant, Cross-Site WebSocket
 * Hijacking, CORS on SSE/poll/API, client tokens on server endpoints, and the API key comparison.
 * Every refusal must happen on every transport: WebSocket (close 4001), SSE, poll and the API (401).
 */
import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ApiKey } from '@herald/server';
import { SignJWT, generateKeyPair } from 'jose';
import { API_KEY, JWT_SECRET, api, publish, startHub, token, until, type TestHub } from '../support/hub.ts';
import {
  JwksServer,
  generatedKeyPair,
  pemKeyPair,
  signWith,
  signingKey,
  type SigningKey,
} from '../support/jwks-server.ts';
import { ACCEPTED, REFUSED, tryEverywhere } from '../support/token-check.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { recordFigures } from './support/figures.ts';
import { HandshakeRefused, RawWs } from './support/raw-ws.ts';

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const now = (): number => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  sub: 'mallory',
  channels: ['*'],
  publish: ['*'],
  iat: now(),
  ...extra,
});

/** A JWT with any header, signed HS-style with any key (or not at all). */
function forge(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key?: string | Buffer,
  hmac = 'sha256',
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = key === undefined ? '' : createHmac(hmac, key).update(input).digest('base64url');
  return `${input}.${signature}`;
}

describe('auth attacks: forged tokens', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('refuses alg none in every spelling, on every transport', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      assert.deepEqual(await tryEverywhere(hub, forge({ alg, typ: 'JWT' }, claims())), REFUSED, alg);
      // With a "signature" anyway, and with the secret as that signature's key.
      assert.deepEqual(await tryEverywhere(hub, forge({ alg, typ: 'JWT' }, claims(), JWT_SECRET)), REFUSED, alg);
    }
  });

  it('refuses RS/ES tokens and HS/RS key confusion', async () => {
    const rsaPair = await generatedKeyPair('RS256');
    const rs = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(rsaPair.privateKey);
    assert.deepEqual(await tryEverywhere(hub, rs), REFUSED, 'RS256');
    const es = await generatedKeyPair('ES256');
    assert.deepEqual(
      await tryEverywhere(hub, await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey)),
      REFUSED,
      'ES256',
    );
    // The classic confusion: HS256 with the RSA public key (PEM or JWK text) as the HMAC secret.
    // Encoded by the generator, not exported afterwards: see pemKeyPair (a Node 20 deadlock).
    const pem = pemKeyPair({ rsa: 2048 }).publicKey;
    assert.deepEqual(
      await tryEverywhere(hub, forge({ alg: 'HS256' }, claims(), pem)),
      REFUSED,
      'HS256 keyed with a public PEM',
    );
    assert.deepEqual(
      await tryEverywhere(hub, forge({ alg: 'HS256' }, claims(), JSON.stringify(rsaPair.jwk))),
      REFUSED,
      'HS256 keyed with a JWK',
    );
    // Other HMAC algorithms with the right secret: only HS256 is accepted.
    assert.deepEqual(
      await tryEverywhere(hub, forge({ alg: 'HS512' }, claims(), JWT_SECRET, 'sha512')),
      REFUSED,
      'HS512',
    );
    assert.deepEqual(
      await tryEverywhere(hub, forge({ alg: 'HS384' }, claims(), JWT_SECRET, 'sha384')),
      REFUSED,
      'HS384',
    );
  });

  it('ignores keys offered by the token itself (jwk, jku, x5u, kid) and unknown critical headers', async () => {
    const attacker = 'attacker-secret-0123456789abcdef0123456789';
    const jwk = { kty: 'oct', k: Buffer.from(attacker).toString('base64url') };
    for (const header of [
      { alg: 'HS256', jwk },
      { alg: 'HS256', jku: 'http://127.0.0.1:1/jwks.json' },
      { alg: 'HS256', x5u: 'http://127.0.0.1:1/cert.pem' },
      { alg: 'HS256', kid: '../../../../dev/null' },
      { alg: 'HS256', kid: "' OR 1=1 --" },
    ]) {
      assert.deepEqual(await tryEverywhere(hub, forge(header, claims(), attacker)), REFUSED, JSON.stringify(header));
    }
    // Signed with the right secret, but demanding an extension the hub does not know.
    assert.deepEqual(
      await tryEverywhere(hub, forge({ alg: 'HS256', crit: ['exp-x'], 'exp-x': 1 }, claims(), JWT_SECRET)),
      REFUSED,
      'crit',
    );
  });

  it('refuses tampered, truncated, oversized and malformed tokens', async () => {
    const good = await token({ sub: 'mallory', channels: ['mine:*'] });
    const [h, p, s] = good.split('.') as [string, string, string];
    const widened = `${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), channels: ['*'] })}.${s}`;
    for (const [name, jwt] of [
      ['payload widened, old signature', widened],
      ['signature truncated', `${h}.${p}.${s.slice(0, -2)}`],
      ['signature dropped', `${h}.${p}.`],
      ['two parts', `${h}.${p}`],
      ['four parts', `${good}.x`],
      ['junk', 'a.b.c'],
      ['dots', '..'],
      ['header not JSON', `${b64('nope')}.${p}.${s}`],
      ['8 KiB + 1', 'a'.repeat(8193)],
      ['sub missing', forge({ alg: 'HS256' }, { channels: ['*'] }, JWT_SECRET)],
      ['sub empty', forge({ alg: 'HS256' }, claims({ sub: '' }), JWT_SECRET)],
      ['sub a number', forge({ alg: 'HS256' }, claims({ sub: 42 }), JWT_SECRET)],
      ['sub 201 characters', forge({ alg: 'HS256' }, claims({ sub: 'x'.repeat(201) }), JWT_SECRET)],
      ['channels a string', forge({ alg: 'HS256' }, claims({ channels: '*' }), JWT_SECRET)],
      ['channels with a regex', forge({ alg: 'HS256' }, claims({ channels: ['orders:[0-9]+'] }), JWT_SECRET)],
      ['publish with a regex', forge({ alg: 'HS256' }, claims({ publish: ['(.*)'] }), JWT_SECRET)],
      ['exp a string', forge({ alg: 'HS256' }, claims({ exp: String(now() + 3600) }), JWT_SECRET)],
    ] as const) {
      assert.deepEqual(await tryEverywhere(hub, jwt), REFUSED, name);
    }
  });

  it('refuses expired and not-yet-valid tokens, honouring the leeway only as configured', async () => {
    assert.deepEqual(await tryEverywhere(hub, await token({ expiresIn: -1 })), REFUSED, 'expired a second ago');
    assert.deepEqual(await tryEverywhere(hub, await token({ nbf: now() + 60 })), REFUSED, 'nbf in a minute');
    const ok = await tryEverywhere(hub, await token({ expiresIn: 60 }));
    assert.equal(ok.ws, 'connected');
    const lenient = await startHub({ jwtLeewaySeconds: 10 });
    try {
      assert.equal((await tryEverywhere(lenient, await token({ expiresIn: -5 }))).ws, 'connected', 'within the leeway');
      assert.deepEqual(await tryEverywhere(lenient, await token({ expiresIn: -15 })), REFUSED, 'past the leeway');
      assert.deepEqual(await tryEverywhere(lenient, await token({ nbf: now() + 60 })), REFUSED, 'nbf past the leeway');
    } finally {
      await lenient.close();
    }
  });

  it('checks aud and iss when configured (HERALD_JWT_AUDIENCE / HERALD_JWT_ISSUER)', async () => {
    const strict = await startHub({ jwtAudience: 'herald', jwtIssuer: 'https://app.example' });
    try {
      const good = await token({ aud: 'herald', iss: 'https://app.example' });
      assert.equal((await tryEverywhere(strict, good)).ws, 'connected');
      assert.equal(
        (await tryEverywhere(strict, await token({ aud: ['other', 'herald'], iss: 'https://app.example' }))).ws,
        'connected',
      );
      for (const [name, extra] of [
        ['aud missing', { iss: 'https://app.example' }],
        ['aud wrong', { aud: 'herald-staging', iss: 'https://app.example' }],
        ['aud prefix', { aud: 'heral', iss: 'https://app.example' }],
        ['iss missing', { aud: 'herald' }],
        ['iss wrong', { aud: 'herald', iss: 'https://evil.example' }],
        ['iss with a trailing slash', { aud: 'herald', iss: 'https://app.example/' }],
      ] as const) {
        assert.deepEqual(await tryEverywhere(strict, await token(extra)), REFUSED, name);
      }
    } finally {
      await strict.close();
    }
  });
});

describe('auth attacks: public keys and algorithm confusion', () => {
  let rsa: SigningKey;
  let ec: SigningKey;
  let ed: SigningKey;
  let jwks: JwksServer;
  let attackerJwks: JwksServer;
  /** Secret, an RSA PEM, and a JWKS with an EC and an Ed25519 key: every kind of key at once. */
  let hub: TestHub;
  let rsaPem: string;
  before(async () => {
    rsa = await signingKey('RS256', 'rsa');
    ec = await signingKey('ES256', 'ec');
    ed = await signingKey('EdDSA', 'ed');
    rsaPem = createPublicKey({ key: rsa.jwk as JsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    }) as string;
    jwks = await JwksServer.start([ec, ed]);
    hub = await startHub({ jwtPublicKey: rsaPem, jwksUrl: jwks.url });
  });
  after(async () => {
    await hub.close();
    await jwks.close();
    await attackerJwks?.close();
  });

  it('accepts each kind of key only for its own algorithm', async () => {
    for (const key of [rsa, ec, ed]) assert.deepEqual(await tryEverywhere(hub, await signWith(key)), ACCEPTED, key.alg);
    assert.deepEqual(await tryEverywhere(hub, await token()), ACCEPTED, 'HS256 with the secret');
  });

  it('refuses HS256 keyed with any configured public key (PEM, JWK, JWKS text), with or without a secret', async () => {
    const noSecret = await startHub({ jwtSecret: undefined, jwtPublicKey: rsaPem, jwksUrl: jwks.url });
    try {
      for (const [name, material] of [
        ['the RSA PEM', rsaPem],
        ['the RSA PEM without its trailing newline', rsaPem.trim()],
        ['the RSA JWK', JSON.stringify(rsa.jwk)],
        ['the EC JWK from the JWKS', JSON.stringify(ec.jwk)],
        ['the whole JWKS', JSON.stringify({ keys: [ec.jwk, ed.jwk] })],
      ] as const) {
        for (const header of [{ alg: 'HS256' }, { alg: 'HS256', kid: 'rsa' }, { alg: 'HS256', kid: 'ec' }]) {
          const forged = forge(header, claims(), material);
          assert.deepEqual(await tryEverywhere(hub, forged), REFUSED, `${name} ${JSON.stringify(header)}`);
          assert.deepEqual(
            await tryEverywhere(noSecret, forged),
            REFUSED,
            `${name} ${JSON.stringify(header)}, no secret`,
          );
        }
      }
      assert.deepEqual(
        await tryEverywhere(noSecret, await token()),
        REFUSED,
        'HS256 with a secret the hub was not given',
      );
    } finally {
      await noSecret.close();
    }
  });

  it('refuses a token that names the algorithm of one key type and the kid of another', async () => {
    // An EC-signed token claiming RS256, an RSA-signed one claiming ES256 with the EC kid, and so on.
    // A good RSA signature under a misleading kid is checked with the RSA key only, and passes:
    // the kid narrows the keys of the token's algorithm, it never picks a key of another type.
    assert.deepEqual(await tryEverywhere(hub, await signWith(rsa, {}, { kid: 'ec' })), ACCEPTED, 'RSA under kid ec');
    const mismatched = [await signWith(ec, {}, { kid: 'ed' }), await signWith(ed, {}, { kid: 'ec' })];
    // jose will not even sign with a key of the wrong type: forge the header over a real signature.
    const swap = (jwt: string, header: Record<string, unknown>): string =>
      `${b64(header)}.${jwt.split('.').slice(1).join('.')}`;
    mismatched.push(
      swap(await signWith(ec), { alg: 'RS256', kid: 'rsa' }),
      swap(await signWith(rsa), { alg: 'ES256', kid: 'ec' }),
      swap(await signWith(ed), { alg: 'ES256', kid: 'ec' }),
      swap(await signWith(ec), { alg: 'EdDSA', kid: 'ed' }),
    );
    for (const jwt of mismatched) {
      // Refused (4001/401), or deferred as an unknown key of the JWKS (1013/503): never accepted.
      const outcome = await tryEverywhere(hub, jwt);
      assert.ok([4001, 1013].includes(outcome.ws as number), `${jwt.split('.')[0]}: ${JSON.stringify(outcome)}`);
      assert.ok(outcome.sse !== 200 && outcome.poll !== 200 && outcome.api !== 200, jwt.split('.')[0]);
    }
  });

  it('refuses other asymmetric algorithms with the right key (PS256, RS384, RS512, ES384), and other signers', async () => {
    // jose exports a KeyObject to a JWK to sign with it: one the generator still shares its lock
    // with could deadlock there (see generatedKeyPair); one imported from its PEM cannot.
    const privateKey = createPrivateKey(pemKeyPair({ rsa: 2048 }).privateKey);
    for (const alg of ['PS256', 'RS384', 'RS512'] as const) {
      // Signed by a key of the same type: the hub must refuse on the algorithm alone.
      const jwt = await new SignJWT(claims()).setProtectedHeader({ alg, kid: 'rsa' }).sign(privateKey);
      assert.deepEqual(await tryEverywhere(hub, jwt), REFUSED, alg);
    }
    const es384 = await generateKeyPair('ES384');
    assert.deepEqual(
      await tryEverywhere(hub, await new SignJWT(claims()).setProtectedHeader({ alg: 'ES384' }).sign(es384.privateKey)),
      REFUSED,
      'ES384',
    );
    // Another RSA key: the PEM key refuses its signature, and the JWKS has no RSA key "rsa" (refused,
    // or deferred while the hub may not fetch the set again): never accepted.
    const stranger = await tryEverywhere(hub, await signWith(await signingKey('RS256', 'rsa')));
    assert.ok([4001, 1013].includes(stranger.ws as number), JSON.stringify(stranger));
    assert.ok(stranger.sse !== 200 && stranger.poll !== 200 && stranger.api !== 200);
  });

  it('never fetches keys a token points to (jku, x5u, jwk) and never trusts an embedded key', async () => {
    const evil = await signingKey('ES256', 'ec');
    attackerJwks = await JwksServer.start([evil]);
    const evilRsa = await signingKey('RS256', 'rsa');
    for (const [name, jwt] of [
      ['jku to the attacker set', await signWith(evil, {}, { jku: attackerJwks.url })],
      ['x5u to the attacker', await signWith(evil, {}, { x5u: attackerJwks.url })],
      ['embedded EC jwk', await signWith(evil, {}, { jwk: evil.jwk })],
      ['embedded RSA jwk', await signWith(evilRsa, {}, { jwk: evilRsa.jwk })],
    ] as const) {
      const outcome = await tryEverywhere(hub, jwt);
      assert.ok([4001, 1013].includes(outcome.ws as number), `${name}: ${JSON.stringify(outcome)}`);
      assert.ok(outcome.sse !== 200 && outcome.poll !== 200 && outcome.api !== 200, name);
    }
    assert.equal(attackerJwks.requests, 0, 'the attacker set was never fetched');
  });
});

describe('auth attacks: channel patterns that try to escape', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  async function canSubscribe(patterns: string[], channel: string): Promise<boolean> {
    const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'p', channels: patterns, publish: [] }));
    const reply = await client.call('subscribe', { channel });
    client.close();
    if (reply.error && reply.error.code !== 'forbidden') throw new Error(`${channel}: ${reply.error.code}`);
    return reply.error === undefined;
  }

  it('grants exactly the pattern: namespaces, prefixes, literal metacharacters, case, paths', async (t) => {
    const table: Array<[string[], string, boolean]> = [
      [['orders:*'], 'orders:42', true],
      [['orders:*'], 'orders', false],
      [['orders:*'], 'ordersX:42', false],
      [['orders:*'], 'orders-admin', false],
      [['orders:*'], 'ORDERS:42', false],
      [['orders:*'], 'admin:orders:42', false],
      [['orders*'], 'orders-admin', true], // a prefix grant, by definition: grant `orders:*` for a namespace
      [['orders:42'], 'orders:420', false],
      [['orders:42'], 'orders:4', false],
      [['orders.42'], 'ordersX42', false],
      [['orders.*'], 'ordersX', false],
      [['.*'], 'admin', false],
      [['*.*'], 'admin', false],
      [['*:*'], 'admin', false],
      [['user:alice:*'], 'user:alice:inbox', true],
      [['user:alice:*'], 'user:alice2:inbox', false],
      [['user:alice*'], 'user:alice2:inbox', true], // again a prefix: the missing `:` is the bug to avoid
      [['orders/*'], 'orders/../admin', true], // a channel of its own: names are not paths
      [['orders/*'], 'admin', false],
      [[], 'anything', false],
    ];
    const wrong: string[] = [];
    for (const [patterns, channel, expected] of table) {
      if ((await canSubscribe(patterns, channel)) !== expected)
        wrong.push(`${JSON.stringify(patterns)} / ${channel}: want ${expected}`);
    }
    assert.deepEqual(wrong, []);
    // `orders/../admin` is not `admin`: a publication to admin never reaches it.
    const client = await WsTestClient.connect(hub.wsUrl, await token({ channels: ['orders/*'] }));
    await client.ok('subscribe', { channel: 'orders/../admin' });
    await publish(hub, 'admin', { secret: true });
    await publish(hub, 'orders/../admin', { fine: true });
    await until(() => client.publications().length === 1, 'the one publication');
    assert.deepEqual(client.publications()[0].data, { fine: true });
    client.close();
    recordFigures(t, 'pattern-escapes', { cases: table.length });
  });

  it('refuses a multi-channel SSE/poll request whole when one channel is outside the grant, and delivers nothing', async () => {
    const jwt = await token({ channels: ['orders:*'] });
    for (const path of ['/sse', '/poll']) {
      const response = await fetch(`${hub.url}${path}?channel=orders:1&channel=admin&token=${jwt}&timeout=0`);
      assert.equal(response.status, 403, path);
      assert.equal(((await response.json()) as any).error.code, 'forbidden');
    }
  });

  it('limits client publishing to the publish patterns, on WebSocket and the API', async () => {
    const jwt = await token({ channels: ['*'], publish: ['chat:*'] });
    const client = await WsTestClient.connect(hub.wsUrl, jwt);
    assert.equal((await client.call('publish', { channel: 'chat:1', data: 1 })).error, undefined);
    assert.equal((await client.call('publish', { channel: 'orders:1', data: 1 })).error?.code, 'forbidden');
    assert.equal((await client.call('publish', { channel: 'chat', data: 1 })).error?.code, 'forbidden');
    client.close();
    assert.equal((await api(hub, 'POST', '/api/publish', { channel: 'chat:1', data: 1 }, jwt)).status, 200);
    assert.equal((await api(hub, 'POST', '/api/publish', { channel: 'orders:1', data: 1 }, jwt)).status, 403);
    const noPublish = await token({ channels: ['*'], publish: undefined });
    assert.equal((await api(hub, 'POST', '/api/publish', { channel: 'chat:1', data: 1 }, noPublish)).status, 403);
  });
});

describe('auth attacks: origins, CORS, server endpoints, API key', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ anonymousChannels: ['public:*'] });
  });
  after(() => hub.close());

  it('refuses a WebSocket upgrade from a hostile Origin with 403 before the handshake (CSWSH), even with a valid token', async (t) => {
    const jwt = await token();
    const same = `http://127.0.0.1:${hub.port}`;
    const hostile = [
      'https://evil.example',
      'null',
      `http://127.0.0.1:${hub.port + 1}`,
      `http://127.0.0.1:${hub.port}.evil.example`,
      `http://localhost:${hub.port}`,
      'file://',
    ];
    for (const origin of hostile) {
      await assert.rejects(
        RawWs.open(hub.port, { path: `/ws?token=${jwt}`, headers: { Origin: origin } }),
        (e: unknown) => {
          assert.ok(e instanceof HandshakeRefused, origin);
          assert.equal(e.status, 403, origin);
          assert.match(e.head, /"code":"origin_not_allowed"/);
          return true;
        },
      );
    }
    const ok = await RawWs.open(hub.port, { headers: { Origin: same } });
    ok.destroy();
    assert.equal(hub.server.hub.stats.connections.websocket, 0, 'no session was ever opened for a hostile origin');
    // A listed origin policy compares whole origins.
    const listed = await startHub({ origins: ['https://app.example'] });
    try {
      for (const [origin, allowed] of [
        ['https://app.example', true],
        ['HTTPS://APP.EXAMPLE', true],
        ['https://app.example.evil.example', false],
        ['https://evil.example/https://app.example', false],
        ['http://app.example', false],
        ['https://app.example:8443', false],
      ] as const) {
        const result = await RawWs.open(listed.port, { headers: { Origin: origin } }).then(
          (ws) => (ws.destroy(), 101),
          (e: unknown) => (e instanceof HandshakeRefused ? e.status : 0),
        );
        assert.equal(result, allowed ? 101 : 403, origin);
      }
    } finally {
      await listed.close();
    }
    recordFigures(t, 'cswsh', { hostileOrigins: hostile.length, answer: 403 });
  });

  it('sends no CORS headers to disallowed origins on SSE, poll, API and preflight; allowed ones get them', async () => {
    const paths = ['/sse?channel=public:a', '/poll?channel=public:a&timeout=0', '/api/channels'];
    for (const path of paths) {
      const bad = await fetch(hub.url + path, {
        headers: { origin: 'https://evil.example', authorization: `Bearer ${API_KEY}` },
      });
      assert.equal(bad.status, 403, path);
      assert.equal(bad.headers.get('access-control-allow-origin'), null, path);
      assert.equal(bad.headers.get('access-control-allow-credentials'), null, path);
      await bad.arrayBuffer();
      const good = await fetch(hub.url + path, { headers: { origin: hub.url, authorization: `Bearer ${API_KEY}` } });
      assert.equal(good.headers.get('access-control-allow-origin'), hub.url, path);
      await good.body?.cancel();
      const preflightBad = await fetch(hub.url + path, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
      });
      assert.equal(preflightBad.status, 403);
      assert.equal(preflightBad.headers.get('access-control-allow-origin'), null);
      await preflightBad.arrayBuffer();
      const preflightGood = await fetch(hub.url + path, {
        method: 'OPTIONS',
        headers: { origin: hub.url, 'access-control-request-method': 'GET' },
      });
      assert.equal(preflightGood.status, 204);
      assert.equal(preflightGood.headers.get('access-control-allow-origin'), hub.url);
      assert.match(preflightGood.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    }
    // Any origin allowed: echoed, but never with credentials (no site may read a cookie-authenticated stream).
    const open = await startHub({ origins: ['*'], anonymousChannels: ['public:*'] });
    try {
      const r = await fetch(`${open.url}/poll?channel=public:a&timeout=0`, {
        headers: { origin: 'https://any.example' },
      });
      assert.equal(r.headers.get('access-control-allow-origin'), 'https://any.example');
      assert.equal(r.headers.get('access-control-allow-credentials'), null);
      await r.arrayBuffer();
    } finally {
      await open.close();
    }
  });

  it('refuses client JWTs on server endpoints, and on reads outside their channels, with 403', async () => {
    // v1.1: history and presence take a client JWT within its `channels` patterns; /api/channels never.
    const jwt = await token({ channels: ['mine:*'], publish: ['*'] });
    for (const path of ['/api/channels', '/api/channels/a/history', '/api/channels/a/presence']) {
      const r = await api(hub, 'GET', path, undefined, jwt);
      assert.equal(r.status, 403, path);
      assert.equal(r.body.error.code, 'forbidden');
    }
    for (const path of ['/api/channels/mine:a/history', '/api/channels/mine:a/presence']) {
      assert.equal((await api(hub, 'GET', path, undefined, jwt)).status, 200, path);
    }
    assert.equal((await api(hub, 'GET', '/api/channels', undefined, await token({ expiresIn: -10 }))).status, 401);
  });

  it('compares the API key in constant time and refuses wrong keys of every length', async (t) => {
    // Code review, pinned: the candidate's bytes, cut or zero-padded to a fixed width, are
    // compared with timingSafeEqual, and its length apart, so the work done depends on the
    // candidate alone, never on the key's bytes, nor on its length below 256 bytes.
    const source = readFileSync(new URL('../../packages/server/src/auth/api-key.ts', import.meta.url), 'utf8');
    assert.match(source, /timingSafeEqual\(scratch, this\.#padded\) && sameLength/);
    const key = new ApiKey(API_KEY);
    const candidates: string[] = [];
    for (let n = 0; n <= 2 * API_KEY.length + 8; n++) {
      candidates.push('x'.repeat(n), API_KEY.slice(0, n), API_KEY.repeat(3).slice(0, n));
    }
    candidates.push(
      API_KEY + ' ',
      ' ' + API_KEY,
      API_KEY.toUpperCase(),
      API_KEY.slice(0, -1) + 'g',
      `${API_KEY}\u0000`,
      'é'.repeat(API_KEY.length),
      '\ud800',
      // Past the 256 bytes always compared.
      API_KEY + 'x'.repeat(400),
      'x'.repeat(300),
    );
    const wrong = candidates.filter((c) => c !== API_KEY);
    for (const candidate of wrong) assert.equal(key.matches(candidate), false, JSON.stringify(candidate));
    assert.equal(key.matches(API_KEY), true);
    // A key longer than those 256 bytes is compared whole.
    const long = new ApiKey(`${API_KEY}-${'k'.repeat(300)}`);
    assert.equal(long.matches(`${API_KEY}-${'k'.repeat(300)}`), true);
    for (const candidate of [
      `${API_KEY}-${'k'.repeat(299)}`,
      `${API_KEY}-${'k'.repeat(299)}j`,
      `${API_KEY}-${'k'.repeat(301)}`,
    ]) {
      assert.equal(long.matches(candidate), false, `${candidate.length} characters`);
    }
    // Over HTTP (header-safe ones): every wrong key is 401, never 403 or 500.
    let checked = 0;
    for (const candidate of wrong.filter((c) => /^[\x21-\x7e]+$/.test(c))) {
      const r = await api(hub, 'GET', '/api/channels', undefined, candidate);
      assert.equal(r.status, 401, JSON.stringify(candidate));
      checked++;
    }
    assert.equal((await api(hub, 'GET', '/api/channels')).status, 200);
    recordFigures(t, 'api-key', {
      wrongKeysUnit: wrong.length,
      wrongKeysHttp: checked,
      lengths: `0..${Math.max(...wrong.map((c) => c.length))}`,
    });
  });
});
