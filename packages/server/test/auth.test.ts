import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:net';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { JWT_SECRET, api, publish, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { poll } from '../../../test/support/poll.ts';
import { RawSse, openEventSource, streamQuery } from '../../../test/support/sse.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Tokens PROTOCOL.md section 3 says must be refused, by name. */
async function badTokens(): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'mallory', channels: ['*'], publish: ['*'] };
  const valid = await token({ sub: 'mallory' });
  return {
    'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, iat: now })}.`,
    'alg none with a signature': `${b64({ alg: 'none' })}.${b64(claims)}.${valid.split('.')[2]}`,
    'bad signature': await token({ sub: 'mallory', secret: 'not-the-secret-0123456789abcdef0123456789' }),
    'tampered payload': `${valid.split('.')[0]}.${b64({ ...claims, sub: 'admin' })}.${valid.split('.')[2]}`,
    'HS512 with the same secret': await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS512' })
      .sign(new TextEncoder().encode(JWT_SECRET)),
    expired: await token({ sub: 'mallory', expiresIn: -5 }),
    malformed: 'not.a.jwt',
    garbage: 'garbage',
    'no sub': await new SignJWT({ channels: ['*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(JWT_SECRET)),
    'channels not a list': await token({ sub: 'mallory', channels: 'everything' as unknown as string[] }),
    'too long': `${valid}${'a'.repeat(9000)}`,
  };
}

async function metric(hub: TestHub, name: string): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? NaN);
}

describe('client tokens', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('refuses every bad token on every transport: WebSocket 4001, HTTP 401', async () => {
    const failuresBefore = await metric(hub, 'herald_auth_failures_total');
    const tokens = await badTokens();
    for (const [name, bad] of Object.entries(tokens)) {
      const ws = new WsTestClient(hub.wsUrl);
      await ws.opened;
      ws.socket.send(JSON.stringify({ id: 1, method: 'connect', params: { token: bad } }));
      assert.equal(await ws.closed, 4001, `WebSocket, ${name}`);
      assert.equal(ws.pushes.at(-1)?.push, 'disconnect', name);
      assert.equal(ws.pushes.at(-1)?.code, 4001, name);
      assert.equal(ws.pushes.at(-1)?.reconnect, false, name);
      // The refused connect is answered too, before the disconnect push (issue 14, item 5).
      assert.equal(ws.replies.get(1)?.error?.code, 'unauthorized', name);

      const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['t:1'], { token: bad })}`);
      assert.equal(sse.status, 401, `SSE, ${name}`);
      assert.equal(sse.json().error.code, 'unauthorized');

      const polled = await poll(hub.url, { channels: ['t:1'], token: bad, timeout: 0 });
      assert.equal(polled.status, 401, `poll, ${name}`);
      assert.equal(polled.body.error.code, 'unauthorized');

      const published = await api(hub, 'POST', '/api/publish', { channel: 't:1', data: 1 }, bad);
      assert.equal(published.status, 401, `API, ${name}`);
      assert.equal(published.body.error.code, 'unauthorized');
      assert.equal(published.body.error.message.includes(bad), false, 'the message never echoes the token');
    }
    const n = Object.keys(tokens).length;
    assert.ok((await metric(hub, 'herald_auth_failures_total')) >= failuresBefore + 4 * n);
    assert.equal((await api(hub, 'GET', '/api/channels/t:1/history')).body.offset, 0);
  });

  it('refuses the token in ?token= and in the Authorization header alike', async () => {
    const { expired } = await badTokens();
    const viaQuery = new WsTestClient(`${hub.wsUrl}?token=${expired}`);
    await viaQuery.opened;
    viaQuery.socket.send('{"id":1,"method":"connect"}');
    assert.equal(await viaQuery.closed, 4001);
    const viaHeader = new WsTestClient(hub.wsUrl, { headers: { authorization: `Bearer ${expired}` } });
    await viaHeader.opened;
    viaHeader.socket.send('{"id":1,"method":"connect"}');
    assert.equal(await viaHeader.closed, 4001);
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['t:1'])}`, {
      headers: { authorization: `Bearer ${expired}` },
    });
    assert.equal(sse.status, 401);
  });

  it('refuses channels outside the token: WebSocket forbidden, SSE and poll 403, nothing delivered', async () => {
    const limited = await token({ sub: 'lim', channels: ['mine:*'], publish: [] });
    const ws = await WsTestClient.connect(hub.wsUrl, limited);
    const refused = await ws.call('subscribe', { channel: 'theirs:1' });
    assert.equal(refused.error?.code, 'forbidden');
    await ws.ok('subscribe', { channel: 'mine:1' });
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['mine:1', 'theirs:1'], { token: limited })}`);
    assert.equal(sse.status, 403);
    assert.equal(sse.json().error.code, 'forbidden');
    const polled = await poll(hub.url, { channels: ['theirs:1'], token: limited, timeout: 0 });
    assert.equal(polled.status, 403);
    await publish(hub, 'theirs:1', 'secret');
    await publish(hub, 'mine:1', 'marker');
    await until(() => ws.publications().length === 1, 'the marker');
    assert.deepEqual(
      ws.publications().map((p) => p.channel),
      ['mine:1'],
    );
    assert.equal((await ws.call('history', { channel: 'theirs:1' })).error?.code, 'forbidden');
    assert.equal((await ws.call('publish', { channel: 'mine:1', data: 1 })).error?.code, 'forbidden');
    ws.close();
  });

  it('lets clients without a token in to the anonymous channels only, on every transport', async () => {
    const open = await startHub({ anonymousChannels: ['public:*'] });
    try {
      const ws = await WsTestClient.connect(open.wsUrl);
      assert.equal(ws.replies.get(1)?.result.userId, undefined);
      await ws.ok('subscribe', { channel: 'public:1' });
      assert.equal((await ws.call('subscribe', { channel: 'private:1' })).error?.code, 'forbidden');
      const sse = await RawSse.open(`${open.url}/sse?${streamQuery(['public:1'])}`);
      assert.equal(sse.status, 200);
      sse.close();
      assert.equal((await RawSse.open(`${open.url}/sse?${streamQuery(['public:1', 'private:1'])}`)).status, 403);
      assert.equal((await poll(open.url, { channels: ['public:1'], timeout: 0 })).status, 200);
      assert.equal((await poll(open.url, { channels: ['private:1'], timeout: 0 })).status, 403);
      // A token's own patterns add to the anonymous ones.
      const member = await WsTestClient.connect(open.wsUrl, await token({ channels: ['private:*'] }));
      await member.ok('subscribe', { channel: 'public:1' });
      await member.ok('subscribe', { channel: 'private:1' });
      ws.close();
      member.close();
    } finally {
      await open.close();
    }
  });

  it('accepts a recently expired token within the configured leeway', async () => {
    const lenient = await startHub({ jwtLeewaySeconds: 30 });
    try {
      const client = await WsTestClient.connect(lenient.wsUrl, await token({ sub: 'late', expiresIn: -5 }));
      assert.deepEqual(await client.ok('ping'), {});
      client.close();
      const tooLate = await RawSse.open(
        `${lenient.url}/sse?${streamQuery(['x'], { token: await token({ sub: 'late', expiresIn: -60 }) })}`,
      );
      assert.equal(tooLate.status, 401);
    } finally {
      await lenient.close();
    }
  });
});

describe('token expiry', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  /** A token whose exp is at least `seconds` away; returns the token and its exp in ms. */
  async function expiring(seconds: number, sub = 'exp-user'): Promise<{ jwt: string; expMs: number }> {
    const exp = Math.floor(Date.now() / 1000) + seconds;
    const jwt = await new SignJWT({ channels: ['*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(JWT_SECRET));
    return { jwt, expMs: exp * 1000 };
  }

  it('ends a WebSocket connection with a disconnect push and close 4003 unless refreshed', async (t) => {
    const { jwt, expMs } = await expiring(2);
    const expiringClient = await WsTestClient.connect(hub.wsUrl, jwt);
    const refreshedClient = await WsTestClient.connect(hub.wsUrl, jwt);
    assert.ok(expiringClient.replies.get(1)?.result.expiresIn <= 2);
    await refreshedClient.ok('subscribe', { channel: 'exp:1' });
    const refreshed = await refreshedClient.ok('refresh', { token: (await expiring(120)).jwt });
    assert.ok(refreshed.expiresIn > 100);
    await Promise.race([expiringClient.closed, sleep(expMs + 10_000 - Date.now())]);
    const lag = Date.now() - expMs;
    t.diagnostic(`closed ${lag} ms after exp (protocol: within 5000 ms)`);
    assert.equal(expiringClient.closeCode, 4003);
    assert.deepEqual(expiringClient.pushes.at(-1), {
      push: 'disconnect',
      code: 4003,
      reason: 'token expired',
      reconnect: true,
    });
    // The refreshed connection outlives the old exp and still receives.
    await sleep(1200);
    await publish(hub, 'exp:1', 'still here');
    await until(() => refreshedClient.publications('exp:1').length === 1, 'a publication after the old exp');
    assert.equal(refreshedClient.closeCode, undefined);
    refreshedClient.close();
  });

  it('ends an SSE stream with herald.disconnect code 4003', async (t) => {
    const { jwt, expMs } = await expiring(2);
    const source = openEventSource(`${hub.url}/sse?${streamQuery(['exp:sse'], { token: jwt })}`);
    try {
      await until(() => source.control.some((c) => c.type === 'herald.disconnect'), 'herald.disconnect', 15_000);
      t.diagnostic(`herald.disconnect ${Date.now() - expMs} ms after exp`);
      const goodbye = source.control.find((c) => c.type === 'herald.disconnect');
      assert.deepEqual(goodbye?.data, { code: 4003, reason: 'token expired', reconnect: true });
    } finally {
      source.source.close();
    }
  });
});

describe('origin policy', () => {
  const upgrade = (url: string, origin?: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const socket = new WebSocket(url, origin === undefined ? {} : { origin });
      socket.once('open', () => {
        socket.close();
        resolve(101);
      });
      socket.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        socket.terminate();
      });
      socket.once('error', (error) => {
        if (!/Unexpected server response/.test(error.message)) reject(error);
      });
    });

  async function statuses(hub: TestHub, origin: string | undefined): Promise<number[]> {
    const headers: Record<string, string> = origin === undefined ? {} : { origin };
    const alice = await token();
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['o:1'], { token: alice })}`, { headers });
    sse.close();
    const polled = await poll(hub.url, { channels: ['o:1'], token: alice, timeout: 0, headers });
    return [await upgrade(hub.wsUrl, origin), sse.status, polled.status];
  }

  it('allows the same host by default, refuses other origins before upgrade or stream, allows no Origin', async () => {
    const hub = await startHub();
    try {
      assert.deepEqual(await statuses(hub, `http://127.0.0.1:${hub.port}`), [101, 200, 200]);
      assert.deepEqual(await statuses(hub, `http://localhost:${hub.port}`), [403, 403, 403]);
      assert.deepEqual(await statuses(hub, `http://127.0.0.1:${hub.port + 1}`), [403, 403, 403]);
      assert.deepEqual(await statuses(hub, 'https://evil.example'), [403, 403, 403]);
      assert.deepEqual(await statuses(hub, 'null'), [403, 403, 403]);
      assert.deepEqual(await statuses(hub, undefined), [101, 200, 200]);
      assert.equal(hub.server.hub.sessionCount, 0);
    } finally {
      await hub.close();
    }
  });

  it('allows exactly the listed origins', async () => {
    const hub = await startHub({ origins: ['https://app.example', 'http://localhost:3000'] });
    try {
      assert.deepEqual(await statuses(hub, 'https://app.example'), [101, 200, 200]);
      assert.deepEqual(await statuses(hub, 'http://localhost:3000'), [101, 200, 200]);
      assert.deepEqual(await statuses(hub, 'https://app.example.evil'), [403, 403, 403]);
      assert.deepEqual(await statuses(hub, `http://127.0.0.1:${hub.port}`), [403, 403, 403]);
      assert.deepEqual(await statuses(hub, undefined), [101, 200, 200]);
    } finally {
      await hub.close();
    }
  });

  it('allows any origin with *', async () => {
    const hub = await startHub({ origins: ['*'] });
    try {
      assert.deepEqual(await statuses(hub, 'https://anywhere.example'), [101, 200, 200]);
    } finally {
      await hub.close();
    }
  });

  it('answers a refused upgrade with a raw 403 and the JSON error shape, never a handshake', async () => {
    const hub = await startHub();
    try {
      const raw = await new Promise<string>((resolve) => {
        const socket = connect(hub.port, '127.0.0.1', () => {
          socket.write(
            'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\nConnection: Upgrade\r\n' +
              'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
          );
        });
        let text = '';
        socket.on('data', (d) => (text += d.toString()));
        socket.on('close', () => resolve(text));
      });
      assert.match(raw, /^HTTP\/1\.1 403 /);
      const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
      assert.equal(body.error.code, 'origin_not_allowed');
    } finally {
      await hub.close();
    }
  });
});
