/**
 * PROTOCOL.md section 3: client tokens (claims, refusals with WebSocket close 4001 / HTTP 401,
 * the leeway), channel permissions (`forbidden` / 403, nothing delivered), `Origin` rules and
 * token expiry (close 4003 / `herald.disconnect` 4003 unless refreshed).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Herald,
  Sse,
  Ws,
  api,
  assertError,
  killAll,
  mint,
  poll,
  publish,
  query,
  rawGet,
  sleep,
  uniqueChannel,
  unsignedToken,
} from './support.ts';

let hub: Herald;
let lenient: Herald;
let listed: Herald;
/** Any origin, and anonymous clients on `public:*`. */
let welcoming: Herald;
before(async () => {
  [hub, lenient, listed, welcoming] = await Promise.all([
    Herald.start(),
    Herald.start({ HERALD_JWT_LEEWAY: '30' }),
    Herald.start({ HERALD_ORIGINS: 'https://app.example.com,https://other.example:8443' }),
    Herald.start({ HERALD_ORIGINS: '*', HERALD_ANONYMOUS_CHANNELS: 'public:*' }),
  ]);
});
after(killAll);

/** What a refused WebSocket token did: a close code after `connect`, or an HTTP status at the upgrade. */
async function wsOutcome(url: string, token: string, how: 'params' | 'query' | 'header'): Promise<string> {
  const target = how === 'query' ? `${url}?token=${encodeURIComponent(token)}` : url;
  const options = how === 'header' ? { headers: { authorization: `Bearer ${token}` } } : {};
  let ws: Ws;
  try {
    ws = await Ws.open(target, options);
  } catch (error: any) {
    return `http ${error.status ?? error.message}`;
  }
  ws.send({ id: 1, method: 'connect', params: how === 'params' ? { token } : {} });
  const close = await ws.closedWithin(10_000).catch(() => undefined);
  if (close === undefined) {
    ws.end();
    return `open: ${JSON.stringify(ws.frames)}`;
  }
  const pushes = ws.pushes('disconnect');
  const pushed =
    pushes.length === 1 && pushes[0].code === close.code ? '' : ` without disconnect push ${JSON.stringify(ws.frames)}`;
  return `close ${close.code}${pushed}`;
}

describe('section 3: tokens', () => {
  const good = { sub: 'alice', channels: ['*'], publish: ['*'] };
  const cases: Array<[string, () => Promise<string>]> = [
    ['alg none', async () => unsignedToken(good)],
    [
      'alg None',
      async () =>
        unsignedToken(good).replace(/^[^.]+/, Buffer.from('{"alg":"None","typ":"JWT"}').toString('base64url')),
    ],
    ['alg none with a signature part', async () => `${unsignedToken(good)}${(await mint(good)).split('.')[2]}`],
    ['exp not a number', () => mint({ ...good, exp: '99999999999' })],
    ['a bad signature', () => mint(good, 'another-secret-0123456789abcdef0123456789')],
    ['exp in the past', () => mint({ ...good, expiresIn: -10 })],
    ['no sub', () => mint({ ...good, sub: null })],
    ['a malformed token', async () => 'not-a-jwt'],
    ['three garbage parts', async () => 'abc.def.ghi'],
    ['a truncated token', async () => (await mint(good)).slice(0, -10)],
  ];

  for (const [what, make] of cases) {
    it(`refuses ${what}: WebSocket close 4001, HTTP 401 on SSE, poll and /api/publish`, async () => {
      const token = await make();
      const channel = uniqueChannel('auth');
      assert.equal(await wsOutcome(hub.wsUrl, token, 'params'), 'close 4001', 'token in connect params');
      for (const how of ['query', 'header'] as const) {
        assert.equal(await wsOutcome(hub.wsUrl, token, how), 'close 4001', `token in ${how}`);
      }
      const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
      assertError({ status: sse.status, headers: sse.headers, text: sse.body, json: sse.json }, 401, 'SSE ?token=');
      const sseHeader = await Sse.open(`${hub.url}/sse?${query([channel])}`, { authorization: `Bearer ${token}` });
      assert.equal(sseHeader.status, 401, 'SSE Authorization header');
      assertError(await poll(hub, [channel], { token, timeout: '0' }), 401, 'poll');
      assertError(
        await api(hub, 'POST', '/api/publish', { channel, data: 1 }, token),
        401,
        '/api/publish with the token',
      );
    });
  }

  it('accepts a token up to HERALD_JWT_LEEWAY seconds past its exp, not beyond', async () => {
    const channel = uniqueChannel('leeway');
    const withinLeeway = await mint({ channels: ['*'], expiresIn: -10 });
    const beyond = await mint({ channels: ['*'], expiresIn: -45 });
    const ws = await Ws.connect(lenient.wsUrl, withinLeeway);
    await ws.ok('subscribe', { channel });
    ws.end();
    assert.equal((await Sse.open(`${lenient.url}/sse?${query([channel], { token: withinLeeway })}`)).status, 200);
    assert.equal(await wsOutcome(lenient.wsUrl, beyond, 'params'), 'close 4001');
    assert.equal((await Sse.open(`${lenient.url}/sse?${query([channel], { token: beyond })}`)).status, 401);
    // Without a configured leeway (default 0), 10 s past exp is expired.
    assert.equal(await wsOutcome(hub.wsUrl, withinLeeway, 'params'), 'close 4001');
  });
});

describe('section 3: anonymous clients', () => {
  it('without HERALD_ANONYMOUS_CHANNELS a client without a token gets nothing', async () => {
    const channel = uniqueChannel('public');
    const sse = await Sse.open(`${hub.url}/sse?${query([channel])}`);
    assert.ok([401, 403].includes(sse.status), `SSE without a token: ${sse.status}`);
    assert.ok([401, 403].includes((await poll(hub, [channel], { timeout: '0' })).status), 'poll without a token');
    const ws = await Ws.open(hub.wsUrl);
    ws.send({ id: 1, method: 'connect', params: {} });
    ws.send({ id: 2, method: 'subscribe', params: { channel } });
    await ws.waitFor(() => ws.frames.some((f) => f.id === 2), 'the subscribe answer').catch(() => undefined);
    if (ws.close === undefined) {
      assert.equal(ws.frames.find((f) => f.id === 2)?.error?.code, 'forbidden', 'subscribe without a token is refused');
    } else {
      assert.equal(ws.close.code, 4001, 'or the connection is refused with 4001');
    }
    ws.end();
  });

  it('may subscribe to the anonymous patterns only, and never publish', async () => {
    const ws = await Ws.open(welcoming.wsUrl);
    const result = await ws.ok('connect', {});
    assert.equal(typeof result.clientId, 'string');
    const open = uniqueChannel('public');
    await ws.ok('subscribe', { channel: open });
    assert.equal((await ws.call('subscribe', { channel: uniqueChannel('private') })).error?.code, 'forbidden');
    assert.equal(typeof (await ws.call('publish', { channel: open, data: 1 })).error?.code, 'string');
    await publish(welcoming, open, 'hello');
    await ws.waitFor(() => ws.pubs(open).length === 1, 'the public publication');
    assert.equal((await Sse.open(`${welcoming.url}/sse?${query([open])}`)).status, 200);
    assert.equal((await poll(welcoming, [open], { timeout: '0' })).status, 200);
    ws.end();
  });

  it('a bad token is refused even on an anonymous channel: it is not taken as no token', async () => {
    const open = uniqueChannel('public');
    for (const token of [await mint({ channels: ['*'], expiresIn: -30 }), unsignedToken({ sub: 'x' }), 'garbage']) {
      assert.equal((await Sse.open(`${welcoming.url}/sse?${query([open], { token })}`)).status, 401, 'SSE');
      assert.equal((await poll(welcoming, [open], { token, timeout: '0' })).status, 401, 'poll');
      assert.equal(await wsOutcome(welcoming.wsUrl, token, 'params'), 'close 4001', 'WebSocket');
    }
  });
});

describe('section 3: the leeway is at most 60 s', () => {
  it('HERALD_JWT_LEEWAY above 60 is refused at start or capped at 60', async (t) => {
    let capped: Herald;
    try {
      capped = await Herald.start({ HERALD_JWT_LEEWAY: '120' });
    } catch (error) {
      t.diagnostic(`refused at start: ${String(error).split('\n').slice(0, 3).join(' ')}`);
      return;
    }
    const token = await mint({ channels: ['*'], expiresIn: -90 });
    assert.equal(await wsOutcome(capped.wsUrl, token, 'params'), 'close 4001', 'a token 90 s past exp is refused');
    assert.equal((await Sse.open(`${capped.url}/sse?${query(['x'], { token })}`)).status, 401);
    await capped.kill();
  });
});

describe('section 3: permissions', () => {
  it('a channel outside `channels` is refused with `forbidden` / 403 and nothing of it is delivered', async () => {
    const channel = uniqueChannel('secret');
    const open = uniqueChannel('mine');
    const token = await mint({ channels: [`${open}*`] });
    const ws = await Ws.connect(hub.wsUrl, token);
    const refused = await ws.call('subscribe', { channel });
    assert.equal(refused.error?.code, 'forbidden');
    assert.equal(typeof refused.error?.message, 'string');
    for (const method of ['history', 'presence']) {
      const reply = await ws.call(method, { channel });
      assert.equal(reply.error?.code, 'forbidden', `${method} on a forbidden channel`);
      // v1.1: the same over HTTP with the client token, for SSE and long-poll clients.
      const path = `/api/channels/${encodeURIComponent(channel)}/${method}`;
      assertError(await api(hub, 'GET', path, undefined, token), 403, `HTTP ${method} on a forbidden channel`);
    }
    await ws.ok('subscribe', { channel: open });
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    assertError({ status: sse.status, headers: sse.headers, text: sse.body, json: sse.json }, 403, 'SSE');
    assertError(await poll(hub, [channel], { token, timeout: '0' }), 403, 'poll');
    await publish(hub, channel, { leak: true });
    await publish(hub, open, { fine: true });
    await ws.waitFor(() => ws.pubs(open).length === 1, 'the permitted publication');
    await sleep(150);
    assert.deepEqual(ws.pubs(channel), [], 'nothing of the refused subscription arrives');
    assert.equal(ws.close, undefined, 'the connection goes on after a refusal');
    ws.end();
  });

  it('a token without `channels` may subscribe to nothing, without `publish` may publish nothing', async () => {
    const channel = uniqueChannel('none');
    const bare = await mint({ sub: 'bob' });
    const ws = await Ws.connect(hub.wsUrl, bare);
    assert.equal((await ws.call('subscribe', { channel })).error?.code, 'forbidden');
    assert.equal((await ws.call('publish', { channel, data: 1 })).error?.code, 'forbidden');
    assert.equal((await Sse.open(`${hub.url}/sse?${query([channel], { token: bare })}`)).status, 403);
    assertError(
      await api(hub, 'POST', '/api/publish', { channel, data: 1 }, bare),
      403,
      '/api/publish without `publish`',
    );
    const subscriber = await mint({ channels: ['*'] });
    assertError(
      await api(hub, 'POST', '/api/publish', { channel, data: 1 }, subscriber),
      403,
      '`channels` does not grant publish',
    );
    const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
    assert.deepEqual(history.json.publications, [], 'nothing was published');
    ws.end();
  });

  it('`publish` patterns limit WebSocket publish and /api/publish with the client token', async () => {
    const token = await mint({ channels: [], publish: ['chat:*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    const allowed = uniqueChannel('chat');
    const other = uniqueChannel('news');
    assert.equal(typeof (await ws.ok('publish', { channel: allowed, data: 1 })).offset, 'number');
    assert.equal((await ws.call('publish', { channel: other, data: 1 })).error?.code, 'forbidden');
    const viaApi = await api(hub, 'POST', '/api/publish', { channel: allowed, data: 2 }, token);
    assert.equal(viaApi.status, 200);
    assert.equal(viaApi.json.offset, 2);
    assertError(await api(hub, 'POST', '/api/publish', { channel: other, data: 2 }, token), 403, 'outside `publish`');
    ws.end();
  });

  it('`info` is shown to others in presence, with the userId and clientId', async () => {
    const channel = uniqueChannel('room');
    const info = { name: 'Alice', color: 'teal', n: [1, 2] };
    const alice = await Ws.open(hub.wsUrl);
    const connected = await alice.call('connect', { token: await mint({ sub: 'alice', channels: ['*'], info }) });
    await alice.ok('subscribe', { channel });
    const bob = await Ws.connect(hub.wsUrl, await mint({ sub: 'bob', channels: ['*'] }));
    await bob.ok('subscribe', { channel });
    const viaWs = await bob.ok('presence', { channel });
    const entry = viaWs.clients.find((c: any) => c.userId === 'alice');
    assert.deepEqual(entry, { clientId: connected.result.clientId, userId: 'alice', info });
    const viaApi = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/presence`);
    assert.deepEqual(
      viaApi.json.clients.find((c: any) => c.userId === 'alice'),
      entry,
    );
    const bobEntry = viaApi.json.clients.find((c: any) => c.userId === 'bob');
    assert.ok(
      bobEntry !== undefined && !('info' in bobEntry && bobEntry.info !== undefined),
      'no info without the claim',
    );
    alice.end();
    bob.end();
  });
});

describe('section 3: Origin', () => {
  async function wsStatus(target: Herald, headers: Record<string, string>): Promise<number> {
    try {
      const ws = await Ws.open(target.wsUrl, { headers });
      ws.end();
      return 101;
    } catch (error: any) {
      return error.status ?? 0;
    }
  }

  async function sseStatus(
    target: Herald,
    headers: Record<string, string>,
  ): Promise<{ status: number; type: string; acao: string }> {
    const token = await mint({ channels: ['*'] });
    const sse = await Sse.open(`${target.url}/sse?${query(['origin:test'], { token })}`, headers);
    sse.close();
    return {
      status: sse.status,
      type: sse.headers.get('content-type') ?? '',
      acao: sse.headers.get('access-control-allow-origin') ?? '',
    };
  }

  async function pollStatus(target: Herald, headers: Record<string, string>): Promise<number> {
    const token = await mint({ channels: ['*'] });
    const response = await fetch(`${target.url}/poll?${query(['origin:test'], { token, timeout: '0' })}`, { headers });
    await response.text();
    return response.status;
  }

  it('by default allows only the same host (host and port equal the Host header) and no Origin at all', async () => {
    const port = hub.port;
    const cases: Array<[string, boolean]> = [
      [`http://127.0.0.1:${port}`, true],
      [`https://127.0.0.1:${port}`, true],
      [`http://127.0.0.1:${port + 1}`, false],
      [`http://localhost:${port}`, false],
      ['http://127.0.0.1', false],
      ['https://evil.example', false],
      ['null', false],
    ];
    for (const [origin, allowed] of cases) {
      const headers = { origin };
      assert.equal(await wsStatus(hub, headers), allowed ? 101 : 403, `WebSocket Origin ${origin}`);
      const sse = await sseStatus(hub, headers);
      assert.equal(sse.status, allowed ? 200 : 403, `SSE Origin ${origin}`);
      if (!allowed) assert.match(sse.type, /json/, 'refused before the stream, as JSON');
      assert.equal(await pollStatus(hub, headers), allowed ? 200 : 403, `poll Origin ${origin}`);
    }
    assert.equal(await wsStatus(hub, {}), 101, 'no Origin: not refused');
    assert.equal((await sseStatus(hub, {})).status, 200, 'no Origin: not refused');
    // Same host under another name: the Host header decides.
    const sameName = await rawGet(port, `/sse?${query(['origin:test'], { token: await mint({ channels: ['*'] }) })}`, {
      host: `localhost:${port}`,
      origin: `http://localhost:${port}`,
    });
    assert.equal(sameName.status, 200, 'Origin localhost:PORT with Host localhost:PORT');
    const otherName = await rawGet(port, `/sse?${query(['origin:test'], { token: await mint({ channels: ['*'] }) })}`, {
      host: `localhost:${port}`,
      origin: `http://127.0.0.1:${port}`,
    });
    assert.equal(otherName.status, 403, 'Origin 127.0.0.1:PORT with Host localhost:PORT');
  });

  it('HERALD_ORIGINS lists the allowed origins, with CORS headers for them; `*` allows any', async () => {
    for (const origin of ['https://app.example.com', 'https://other.example:8443']) {
      assert.equal(await wsStatus(listed, { origin }), 101, `WebSocket ${origin}`);
      const sse = await sseStatus(listed, { origin });
      assert.equal(sse.status, 200, `SSE ${origin}`);
      assert.ok([origin, '*'].includes(sse.acao), `Access-Control-Allow-Origin for ${origin}: ${sse.acao}`);
      assert.equal(await pollStatus(listed, { origin }), 200, `poll ${origin}`);
    }
    for (const origin of [
      'https://evil.example',
      'https://other.example',
      'http://app.example.com',
      'https://app.example.com.evil.example',
    ]) {
      assert.equal(await wsStatus(listed, { origin }), 403, `WebSocket ${origin}`);
      assert.equal((await sseStatus(listed, { origin })).status, 403, `SSE ${origin}`);
      assert.equal(await pollStatus(listed, { origin }), 403, `poll ${origin}`);
    }
    const origin = 'https://anything.example';
    assert.equal(await wsStatus(welcoming, { origin }), 101);
    const sse = await sseStatus(welcoming, { origin });
    assert.equal(sse.status, 200);
    assert.ok([origin, '*'].includes(sse.acao), `Access-Control-Allow-Origin with *: ${sse.acao}`);
  });
});

describe('section 3: token expiry', () => {
  it('ends a WebSocket (4003) and an SSE stream (herald.disconnect 4003) when the token expires, unless refreshed', async (t) => {
    const channel = uniqueChannel('expiry');
    const short = await mint({ channels: ['*'], expiresIn: 2 });
    const expiresAt = JSON.parse(Buffer.from(short.split('.')[1] as string, 'base64url').toString()).exp * 1000;

    const expiring = await Ws.open(hub.wsUrl);
    const connected = await expiring.call('connect', { token: short });
    assert.equal(typeof connected.result.expiresIn, 'number', 'connect answers expiresIn for a token with exp');
    assert.ok(
      connected.result.expiresIn > 0 && connected.result.expiresIn <= 2,
      `expiresIn ${connected.result.expiresIn}`,
    );

    const refreshed = await Ws.connect(hub.wsUrl, short);
    await refreshed.ok('subscribe', { channel });
    const renewal = await refreshed.ok('refresh', { token: await mint({ channels: ['*'], expiresIn: 60 }) });
    assert.ok(
      renewal.expiresIn > 50 && renewal.expiresIn <= 60,
      `refresh answers expiresIn: ${JSON.stringify(renewal)}`,
    );

    // A refresh with a token that is not valid changes nothing: the connection still ends.
    const badRefresh = await Ws.connect(hub.wsUrl, short);
    const refusedRenewal = await badRefresh.call('refresh', { token: await mint({ channels: ['*'], expiresIn: -5 }) });
    assert.equal(typeof refusedRenewal.error?.code, 'string', 'refresh with an expired token is an error');

    // The same token on a hub with a 30 s leeway is not expired at exp.
    const graced = await Ws.connect(lenient.wsUrl, short);

    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token: short })}`);
    assert.equal(sse.status, 200);

    const close = await expiring.closedWithin(10_000);
    t.diagnostic(JSON.stringify({ closedMsAfterExp: Date.now() - expiresAt }));
    assert.equal(close.code, 4003);
    const push = expiring.pushes('disconnect');
    assert.equal(push.length, 1, 'a disconnect push precedes the close');
    assert.equal(push[0].code, 4003);
    assert.equal(push[0].reconnect, true, '4003: reconnect after refresh');

    const badClose = await badRefresh.closedWithin(10_000);
    assert.equal(badClose.code, 4003, 'a refused refresh does not extend the token');

    await sse.waitFor(() => sse.named('herald.disconnect').length === 1, 'SSE herald.disconnect', 10_000);
    assert.equal(sse.named('herald.disconnect')[0].code, 4003);
    await sse.done;

    // 5 s past expiry (the protocol's bound) plus a margin, the refreshed connection still works.
    await sleep(Math.max(0, expiresAt + 6_000 - Date.now()));
    assert.equal(refreshed.close, undefined, 'the refreshed connection stays open');
    await publish(hub, channel, { after: 'refresh' });
    await refreshed.waitFor(() => refreshed.pubs(channel).length === 1, 'a publication after the old expiry');
    assert.equal(graced.close, undefined, 'within the leeway the connection stays open');
    refreshed.end();
    graced.end();
  });
});
