/**
 * Secrets in logs, adversarially: the real `herald serve` at debug level, with an API key, a JWT
 * secret and a token cookie configured, takes a full run of traffic where tokens travel in every
 * place they may (query string, header, cookie, connect params) and in places they should not
 * (404 and 405 routes, refused upgrades, bad cursors, 429s, junk Authorization headers); every
 * byte it prints is then searched for every secret and token used, whole and in pieces.
 * (apps/herald/test/logs.test.ts covers the ordinary traffic; this one the failure paths.)
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runHerald } from '../support/cli.ts';
import { token, until } from '../support/hub.ts';
import { RawSse, streamQuery } from '../support/sse.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { recordFigures } from './support/figures.ts';
import { HandshakeRefused, RawWs, textFrame } from './support/raw-ws.ts';

const API_KEY = 'reliability-api-key-7d3f9a1c5e';
const JWT_SECRET = 'reliability-jwt-secret-2b4d6f8a0c1e3a5c7e9b';
const CLI = fileURLToPath(new URL('../../apps/herald/dist/cli.js', import.meta.url));

describe('secrets in logs (herald serve, debug level, failure paths)', () => {
  it('prints no API key, JWT secret or token, whole or in part, whatever the clients do', async (t) => {
    assert.ok(existsSync(CLI), 'apps/herald/dist is missing: run `npm run build` first (npm test does)');
    const child = runHerald(['serve'], {
      PORT: '0',
      HOST: '127.0.0.1',
      HERALD_API_KEY: API_KEY,
      HERALD_JWT_SECRET: JWT_SECRET,
      HERALD_LOG_LEVEL: 'debug',
      HERALD_TOKEN_COOKIE: 'herald_token',
      HERALD_CONNECTION_RATE_PER_IP: '2000:200',
      HERALD_MAX_CONNECTIONS_PER_USER: '2',
    });
    const secrets: string[] = [API_KEY, JWT_SECRET];
    let requests = 0;
    try {
      const base = await child.listening;
      const port = Number(new URL(base).port);
      const wsUrl = `${base.replace('http', 'ws')}/ws`;
      const valid = await token({ sub: 'victim', secret: JWT_SECRET, channels: ['logs:*'], publish: ['logs:*'] });
      const forged = await token({ sub: 'forger', secret: 'forged-secret-0123456789abcdef0123456789' });
      const expired = await token({ sub: 'late', secret: JWT_SECRET, expiresIn: -30 });
      const huge = await token({ sub: 'huge', secret: JWT_SECRET, info: { blob: 'z'.repeat(9000) } });
      secrets.push(valid, forged, expired, huge);
      const get = async (path: string, headers: Record<string, string> = {}): Promise<number> => {
        requests++;
        const r = await fetch(base + path, { headers });
        await r.arrayBuffer().catch(() => undefined);
        return r.status;
      };

      // Tokens where they belong, and past the per-user cap (429 / 4005).
      const a = await WsTestClient.connect(`${wsUrl}?token=${valid}`);
      const b = await WsTestClient.connect(wsUrl, valid);
      const c = new WsTestClient(wsUrl, { headers: { authorization: `Bearer ${valid}` } });
      await c.opened;
      c.socket.send('{"id":1,"method":"connect"}');
      assert.equal(await c.closed, 4005);
      assert.equal(await get(`/sse?${streamQuery(['logs:1'], { token: valid })}`), 429);
      await a.ok('subscribe', { channel: 'logs:1' });
      await a.ok('refresh', { token: valid });
      assert.equal((await a.call('refresh', { token: forged })).error?.code, 'unauthorized');
      assert.equal((await a.call('refresh', { token: API_KEY })).error?.code, 'unauthorized');
      a.close();
      b.close();
      await new Promise((r) => setTimeout(r, 200));
      const sse = await RawSse.open(`${base}/sse?${streamQuery(['logs:1'])}`, {
        headers: { cookie: `herald_token=${valid}` },
      });
      await until(() => sse.events.length >= 1, 'herald.connected');
      sse.close();

      // Tokens and keys where they do not belong.
      for (const secret of [valid, forged, expired, API_KEY, JWT_SECRET]) {
        assert.equal(await get(`/nope?token=${secret}`), 404);
        assert.equal(await get(`/api/nope?token=${secret}`, { authorization: `Bearer ${secret}` }), 404);
        assert.equal(await get(`/sse?channel=logs:1&token=${secret}&lastEventId=${secret}`), 400);
        assert.equal(await get(`/poll?channel=logs:1&cursor=h1,${secret}`), 400);
        assert.equal(await get(`/sse?channel=bad*name&token=${secret}`), 400);
        assert.equal(await get(`/api/channels?key=${secret}`, { authorization: `Basic ${secret}` }), 401);
        assert.equal(
          await get(`/api/channels/logs:1/history?since=${secret}`, { authorization: `Bearer ${API_KEY}` }),
          400,
        );
        requests++;
        const r = await fetch(`${base}/sse?channel=logs:1&token=${secret}`, { method: 'DELETE' });
        assert.equal(r.status, 405);
        await r.arrayBuffer();
        await assert.rejects(
          RawWs.open(port, { path: `/ws?token=${secret}`, headers: { Origin: 'https://evil.example' } }),
          HandshakeRefused,
        );
        await assert.rejects(RawWs.open(port, { path: `/elsewhere?token=${secret}` }), HandshakeRefused);
        // A connect whose frame is broken after the token: 1007, and the token was in the frame.
        const raw = await RawWs.open(port);
        raw.write(
          Buffer.concat([
            textFrame(`{"id":1,"method":"connect","params":{"token":"${secret}\u00ff`).subarray(0, -2),
            Buffer.from([0xc3, 0x28]),
          ]),
        );
        await raw.closeCodeOf(10_000);
        const rejected = new WsTestClient(`${wsUrl}?token=${secret}`);
        await rejected.opened;
        rejected.socket.send(JSON.stringify({ id: 1, method: 'connect', params: { token: `${secret}x` } }));
        await rejected.closed;
        requests += 5;
      }
      assert.equal(await get('/api/channels', { authorization: `Bearer ${huge}` }), 401);
      assert.equal(await get('/sse?channel=logs:1', { authorization: `Bearer ${huge}` }), 401);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      child.child.kill('SIGTERM');
      const stopped = Date.now();
      await Promise.race([child.exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
      t.diagnostic(`exited ${Date.now() - stopped} ms after SIGTERM`);
      child.kill();
    }
    const output = child.stdout() + child.stderr();
    const leaks: string[] = [];
    for (const secret of secrets) {
      // Whole, and any 16-character piece of it (a truncated or split secret is still a leak).
      for (let i = 0; i + 16 <= secret.length; i += 8) {
        const piece = secret.slice(i, i + 16);
        if (output.includes(piece)) {
          leaks.push(`${secret.slice(0, 12)}... (piece at ${i})`);
          break;
        }
      }
    }
    recordFigures(t, 'secrets-in-logs', {
      requests,
      secretsSearched: secrets.length,
      outputBytes: output.length,
      logLines: output.split('\n').length,
    });
    assert.ok(output.length > 0, 'the hub printed something to search');
    assert.deepEqual(leaks, []);
  });
});
