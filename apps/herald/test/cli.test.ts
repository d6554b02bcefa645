/** The `herald` command as users run it: help, token minting, configuration files and errors. */
import assert from 'node:assert/strict';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { runHerald } from '../../../test/support/cli.ts';
import { API_KEY, JWT_SECRET, startHub, token, type TestHub } from '../../../test/support/hub.ts';
import { JwksServer, pemKeyPair, signWith, signingKey } from '../../../test/support/jwks-server.ts';
import { RawSse, streamQuery } from '../../../test/support/sse.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const SECRETS = { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET, HOST: '127.0.0.1' };

/** Runs a command to its end; returns exit code and output. */
async function run(args: string[], env: Record<string, string> = {}) {
  const child = runHerald(args, env);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

describe('herald --help and token', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('prints usage and every setting with --help, and exits 0', async () => {
    const { code, stdout, stderr } = await run(['--help']);
    assert.equal(code, 0);
    assert.equal(stderr, '');
    assert.match(stdout, /Usage:/);
    assert.match(stdout, /herald token --sub USER/);
    for (const env of ['PORT', 'HERALD_API_KEY', 'HERALD_JWT_SECRET', 'HERALD_HISTORY_SIZE', 'HERALD_ORIGINS']) {
      assert.match(stdout, new RegExp(`\\b${env}\\b`), env);
    }
    assert.equal((await run(['serve', '--help'])).code, 0);
    // The bench's options, not the hub's settings.
    const bench = await run(['bench', '--help']);
    assert.equal(bench.code, 0);
    assert.match(bench.stdout, /--scenarios/);
    assert.doesNotMatch(bench.stdout, /HERALD_API_KEY/);
  });

  it('mints a token the hub accepts, limited to the patterns given', async () => {
    const { code, stdout } = await run(
      ['token', '--sub', 'x', '--channel', 'a:*', '--publish', 'a:chat', '--info', '{"name":"X"}', '--ttl', '600'],
      { HERALD_JWT_SECRET: JWT_SECRET },
    );
    assert.equal(code, 0);
    const jwt = stdout.trim();
    assert.equal(decodeProtectedHeader(jwt).alg, 'HS256');
    const claims = decodeJwt(jwt);
    assert.equal(claims.sub, 'x');
    assert.deepEqual(claims.channels, ['a:*']);
    assert.ok(typeof claims.exp === 'number' && claims.exp > Date.now() / 1000 + 500);
    const client = await WsTestClient.connect(hub.wsUrl, jwt);
    assert.equal(client.replies.get(1)?.result.userId, 'x');
    assert.equal((await client.call('subscribe', { channel: 'a:1' })).error, undefined);
    assert.equal((await client.call('subscribe', { channel: 'b:1' })).error?.code, 'forbidden');
    assert.equal((await client.call('publish', { channel: 'a:chat', data: 1 })).error, undefined);
    assert.equal((await client.call('publish', { channel: 'a:1', data: 1 })).error?.code, 'forbidden');
    client.close();
  });

  it('refuses to mint without --sub or without a secret, with exit code 2 and one sentence', async () => {
    const noSub = await run(['token', '--channel', 'a:*'], { HERALD_JWT_SECRET: JWT_SECRET });
    assert.equal(noSub.code, 2);
    assert.match(noSub.stderr, /--sub/);
    const noSecret = await run(['token', '--sub', 'x']);
    assert.equal(noSecret.code, 2);
    assert.match(noSecret.stderr, /HERALD_JWT_SECRET/);
    assert.equal(noSecret.stdout, '');
  });
});

describe('herald serve configuration', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts `herald serve --config file`, checks what the file configured, stops it. */
  async function serveWith(file: string, env: Record<string, string> = {}): Promise<{ history: number[] }> {
    const child = runHerald(['serve', '--config', file], { HOST: '127.0.0.1', HERALD_LOG_LEVEL: 'warn', ...env });
    try {
      const base = await child.listening;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      // anonymousChannels from the file: an SSE client without a token may subscribe there only.
      const open = await RawSse.open(`${base}/sse?${streamQuery(['public:news'])}`);
      assert.equal(open.status, 200);
      open.close();
      assert.equal((await RawSse.open(`${base}/sse?${streamQuery(['private:1'])}`)).status, 403);
      // historySize from the file (or the environment, which wins).
      for (let i = 1; i <= 5; i++) {
        const published = await fetch(`${base}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}` },
          body: JSON.stringify({ channel: 'public:news', data: i }),
        });
        assert.equal(published.status, 200);
      }
      const history = (await (
        await fetch(`${base}/api/channels/public:news/history`, { headers: { authorization: `Bearer ${API_KEY}` } })
      ).json()) as { publications: Array<{ data: number }> };
      child.child.kill('SIGTERM');
      assert.equal(await child.exited, 0);
      return { history: history.publications.map((p) => p.data) };
    } finally {
      child.kill();
    }
  }

  it('reads a JSON config file', async () => {
    const file = join(dir, 'herald.json');
    writeFileSync(
      file,
      JSON.stringify({
        port: 0,
        apiKey: API_KEY,
        jwtSecret: JWT_SECRET,
        anonymousChannels: ['public:*'],
        historySize: 3,
      }),
    );
    assert.deepEqual((await serveWith(file)).history, [3, 4, 5]);
  });

  it('reads a YAML config file, and the environment wins over it', async () => {
    const file = join(dir, 'herald.yaml');
    writeFileSync(
      file,
      [
        'port: 0',
        `apiKey: ${API_KEY}`,
        `jwtSecret: ${JWT_SECRET}`,
        'anonymousChannels:',
        '  - "public:*"',
        'historySize: 3',
        '',
      ].join('\n'),
    );
    assert.deepEqual((await serveWith(file)).history, [3, 4, 5]);
    assert.deepEqual((await serveWith(file, { HERALD_HISTORY_SIZE: '2' })).history, [4, 5]);
  });

  /** A refused configuration: exit code 2, nothing on stdout, one sentence on stderr naming `name`. */
  function assertRefused(result: { code: number | string; stdout: string; stderr: string }, name: string): void {
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got: ${result.stderr}`);
    assert.ok(lines[0]?.includes(name), `"${lines[0]}" names ${name}`);
    assert.ok(!/\n\s+at /.test(result.stderr), 'no stack trace');
  }

  it('refuses an invalid environment value with exit code 2 and one sentence naming the variable', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ HERALD_HISTORY_SIZE: 'abc' }, 'HERALD_HISTORY_SIZE'],
      [{ PORT: '99999' }, 'PORT'],
      [{ HERALD_BROKER: 'kafka://x' }, 'HERALD_BROKER'],
      [{ HERALD_JWT_SECRET: 'short' }, 'HERALD_JWT_SECRET'],
      [{ HERALD_PUSHER_APPS: '[{"id":"1","key":"k","secret":"short"}]' }, 'HERALD_PUSHER_APPS'],
      [{ HERALD_PUSHER_APPS: 'not json' }, 'HERALD_PUSHER_APPS'],
    ];
    const results = await Promise.all(cases.map(([env]) => run(['serve'], { ...SECRETS, PORT: '0', ...env })));
    results.forEach((result, i) => assertRefused(result, cases[i]?.[1] as string));
  });

  it('refuses an unknown or invalid file key, and unreadable files, with exit code 2', async () => {
    writeFileSync(join(dir, 'unknown.json'), JSON.stringify({ port: 0, historySise: 10 }));
    writeFileSync(join(dir, 'invalid.yaml'), 'port: 0\nhistorySize: lots\n');
    writeFileSync(join(dir, 'broken.json'), '{"port": 0,');
    const cases: Array<[string, string]> = [
      ['unknown.json', 'historySise'],
      ['invalid.yaml', 'historySize'],
      ['broken.json', 'broken.json'],
      ['missing.yaml', 'missing.yaml'],
    ];
    const results = await Promise.all(cases.map(([file]) => run(['serve', '--config', join(dir, file)], SECRETS)));
    results.forEach((result, i) => assertRefused(result, cases[i]?.[1] as string));
  });

  it('refuses an unknown command with exit code 2', async () => {
    const result = await run(['launch']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown command "launch"/);
  });
});

describe('herald serve with public keys', () => {
  let dir: string;
  let jwks: JwksServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-keys-'));
    jwks = await JwksServer.start();
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await jwks.close();
  });

  it('reads HERALD_JWT_PUBLIC_KEY from a file and HERALD_JWKS_URL, accepts no HS256 token, and keeps the admin page working', async () => {
    const rsa = await signingKey('RS256', 'rsa-1');
    const es = await signingKey('ES256', 'es-1');
    jwks.serve([es]);
    const pemFile = join(dir, 'public.pem');
    writeFileSync(
      pemFile,
      createPublicKey({ key: rsa.jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string,
    );
    const child = runHerald(['serve'], {
      HERALD_API_KEY: API_KEY,
      HERALD_JWT_PUBLIC_KEY: pemFile,
      HERALD_JWKS_URL: jwks.url,
      HERALD_JWT_MAX_LIFETIME: '3600',
      HOST: '127.0.0.1',
      PORT: '0',
      HERALD_LOG_LEVEL: 'warn',
    });
    try {
      const base = await child.listening;
      assert.doesNotMatch(child.stdout(), /HERALD_JWT_SECRET =/, 'no secret generated or printed');
      const sse = async (jwt: string): Promise<number> => {
        const stream = await RawSse.open(`${base}/sse?${streamQuery(['c'], { token: jwt })}`);
        stream.close();
        return stream.status;
      };
      assert.equal(await sse(await signWith(rsa)), 200, 'RS256 from the PEM file');
      assert.equal(await sse(await signWith(es)), 200, 'ES256 from the JWKS');
      assert.equal(await sse(await token()), 401, 'HS256 is not accepted without a secret');
      assert.equal(await sse(await signWith(rsa, { iat: Math.floor(Date.now() / 1000) - 3700 })), 401, 'too old');
      // The admin page still gets its stream token (signed with a key derived from the API key).
      const session = await fetch(`${base}/admin/session`, {
        method: 'POST',
        headers: { origin: base, 'content-type': 'application/json' },
        body: JSON.stringify({ apiKey: API_KEY }),
      });
      assert.equal(session.status, 200);
      const { token: adminToken, channel } = (await session.json()) as { token: string; channel: string };
      const admin = await RawSse.open(`${base}/sse?${streamQuery([channel], { token: adminToken })}`);
      assert.equal(admin.status, 200);
      admin.close();
      // Revocations expire with a maximum token lifetime.
      const revoked = await fetch(`${base}/api/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ user: 'alice', before: 1_763_700_000 }),
      });
      assert.deepEqual(await revoked.json(), { user: 'alice', before: 1_763_700_000, expiresAt: 1_763_703_600 });
      child.child.kill('SIGTERM');
      assert.equal(await child.exited, 0);
    } finally {
      child.kill();
    }
  });

  it('refuses a public key it cannot use, or cannot read, with exit code 2 naming HERALD_JWT_PUBLIC_KEY', async () => {
    const privateFile = join(dir, 'private.pem');
    writeFileSync(
      privateFile,
      // Encoded by the generator: exporting its KeyObject can deadlock Node 20 (pemKeyPair).
      pemKeyPair({ ec: 'prime256v1' }).privateKey,
    );
    for (const value of [privateFile, join(dir, 'missing.pem'), '{"kty":"RSA"}']) {
      const result = await run(['serve'], { HERALD_API_KEY: API_KEY, HERALD_JWT_PUBLIC_KEY: value, PORT: '0' });
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^herald: .*HERALD_JWT_PUBLIC_KEY/);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    }
  });
});
