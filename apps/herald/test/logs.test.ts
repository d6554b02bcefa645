/**
 * Structured logs never carry secrets: not the API key, not the JWT secret, not client tokens,
 * not even tokens that arrive in `?token=` query strings or that the hub refuses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runHerald } from '../../../test/support/cli.ts';
import { token, until } from '../../../test/support/hub.ts';
import { poll } from '../../../test/support/poll.ts';
import { RawSse, streamQuery } from '../../../test/support/sse.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const API_KEY = 'log-test-api-key-5e1f0a9c7b3d';
const JWT_SECRET = 'log-test-jwt-secret-8c2e6a4f0b1d3e5f7a9c';

describe('logs', () => {
  it('never contain the API key, the JWT secret or client tokens, at debug level', async () => {
    const child = runHerald(['serve'], {
      PORT: '0',
      HOST: '127.0.0.1',
      HERALD_API_KEY: API_KEY,
      HERALD_JWT_SECRET: JWT_SECRET,
      HERALD_LOG_LEVEL: 'debug',
    });
    const secrets: string[] = [API_KEY, JWT_SECRET];
    try {
      const base = await child.listening;
      const wsUrl = `${base.replace('http', 'ws')}/ws`;
      const valid = await token({ sub: 'logged-user', secret: JWT_SECRET, info: { name: 'L' } });
      const forged = await token({ sub: 'forger', secret: 'some-other-secret-0123456789abcdef0123' });
      const expired = await token({ sub: 'late', secret: JWT_SECRET, expiresIn: -30 });
      const algNone = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.`;
      secrets.push(valid, forged, expired, algNone);

      // Valid tokens in every place a token may come from.
      const viaQuery = new WsTestClient(`${wsUrl}?token=${valid}`);
      await viaQuery.opened;
      await viaQuery.ok('connect');
      await viaQuery.ok('subscribe', { channel: 'logs:1' });
      await viaQuery.ok('publish', { channel: 'logs:1', data: { hello: 'world' } });
      await viaQuery.ok('refresh', { token: valid });
      const viaHeader = new WsTestClient(wsUrl, { headers: { authorization: `Bearer ${valid}` } });
      await viaHeader.opened;
      await viaHeader.ok('connect');
      const sse = await RawSse.open(`${base}/sse?${streamQuery(['logs:1'], { token: valid })}`);
      await until(() => sse.events.length >= 1, 'herald.connected');
      await poll(base, { channels: ['logs:1'], token: valid, timeout: 0 });
      const published = await fetch(`${base}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ channel: 'logs:1', data: 1 }),
      });
      assert.equal(published.status, 200);
      await fetch(`${base}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${valid}` },
        body: JSON.stringify({ channel: 'logs:1', data: 2 }),
      });

      // Refused tokens, everywhere.
      for (const bad of [forged, expired, algNone]) {
        const refused = new WsTestClient(`${wsUrl}?token=${bad}`);
        await refused.opened;
        refused.socket.send('{"id":1,"method":"connect"}');
        assert.equal(await refused.closed, 4001);
        const inParams = new WsTestClient(wsUrl);
        await inParams.opened;
        inParams.socket.send(JSON.stringify({ id: 1, method: 'connect', params: { token: bad } }));
        assert.equal(await inParams.closed, 4001);
        assert.equal((await RawSse.open(`${base}/sse?${streamQuery(['logs:1'], { token: bad })}`)).status, 401);
        assert.equal((await poll(base, { channels: ['logs:1'], token: bad, timeout: 0 })).status, 401);
        const api = await fetch(`${base}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bad}` },
          body: '{"channel":"logs:1","data":1}',
        });
        assert.equal(api.status, 401);
      }
      const wrongKey = await fetch(`${base}/api/channels`, { headers: { authorization: `Bearer ${API_KEY}x` } });
      assert.equal(wrongKey.status, 401);
      secrets.push(`${API_KEY}x`);
      // Odd requests that may reach error paths.
      await fetch(`${base}/sse?channel=logs:1&token=${valid}&lastEventId=garbage`);
      await fetch(`${base}/nothing?token=${valid}`);
      const bad = new WsTestClient(`${wsUrl}?token=${valid}`);
      await bad.opened;
      await bad.ok('connect');
      bad.socket.send('{oops');
      await bad.closed;

      viaQuery.close();
      viaHeader.close();
      sse.close();
      child.child.kill('SIGTERM');
      assert.equal(await child.exited, 0);
    } finally {
      child.kill();
    }
    const output = child.stdout() + child.stderr();
    const logLines = output.split('\n').filter((line) => line.startsWith('{'));
    assert.ok(logLines.length >= 3, `structured log lines were written:\n${output}`);
    for (const line of logLines) JSON.parse(line);
    for (const secret of secrets) {
      assert.equal(output.includes(secret), false, `output contains a secret (${secret.slice(0, 12)}...)`);
      // Nor any distinctive part of a token (its signature, its payload).
      for (const part of secret.split('.').filter((p) => p.length >= 16)) {
        assert.equal(output.includes(part), false, `output contains part of a token (${part.slice(0, 12)}...)`);
      }
    }
  });

  it('prints generated secrets in the banner only, never in a log line', async () => {
    const child = runHerald(['serve'], { PORT: '0', HOST: '127.0.0.1', HERALD_LOG_LEVEL: 'debug' });
    try {
      await child.listening;
      child.child.kill('SIGTERM');
      assert.equal(await child.exited, 0);
    } finally {
      child.kill();
    }
    const apiKey = /HERALD_API_KEY\s*=\s*(\S+)/.exec(child.stdout())?.[1];
    assert.ok(apiKey !== undefined && apiKey.length >= 16, 'the generated API key is shown');
    // Only in the banner: never in a structured log line.
    const logLines = (child.stdout() + child.stderr()).split('\n').filter((line) => line.startsWith('{'));
    assert.ok(logLines.length >= 1);
    for (const line of logLines) assert.equal(line.includes(apiKey), false, line);
  });
});
