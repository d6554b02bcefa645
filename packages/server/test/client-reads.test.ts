/**
 * PROTOCOL.md v1.1 section 4: a client reads a channel's history and presence over HTTP with its
 * own JWT, within its `channels` patterns, so that SSE and long-poll clients have what WebSocket
 * clients have; `/api/channels` stays server-only. Refusals say why: outside the token's patterns,
 * a token missing where the channel is not anonymous (issue 14, item 8), a bearer that is neither
 * the API key nor a valid token (issue 14, item 2).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API_KEY, api, publish, startHub, token, type TestHub } from '../../../test/support/hub.ts';
import { poll } from '../../../test/support/poll.ts';
import { RawSse, streamQuery } from '../../../test/support/sse.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const history = (channel: string, query = ''): string =>
  `/api/channels/${encodeURIComponent(channel)}/history${query === '' ? '' : `?${query}`}`;
const presence = (channel: string): string => `/api/channels/${encodeURIComponent(channel)}/presence`;

async function anonymous(hub: TestHub, path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(hub.url + path);
  return { status: response.status, body: await response.json() };
}

describe('client reads over HTTP (PROTOCOL.md v1.1 section 4)', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ anonymousChannels: ['public:*'] });
  });
  after(() => hub.close());

  it('a client JWT reads history and presence of its own channels, as the API key does', async () => {
    const channel = 'reads:1';
    await publish(hub, channel, { n: 1 });
    const second = await publish(hub, channel, { n: 2 });
    const ws = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'bob', info: { name: 'Bob' } }));
    await ws.ok('subscribe', { channel });
    const reader = await token({ sub: 'carol', channels: ['reads:*'], publish: [] });

    const mine = await api(hub, 'GET', history(channel), undefined, reader);
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    const server = await api(hub, 'GET', history(channel));
    assert.deepEqual(mine.body, server.body, 'the same answer as with the API key');
    assert.deepEqual(
      mine.body.publications.map((p: any) => p.data),
      [{ n: 1 }, { n: 2 }],
    );
    const since = await api(hub, 'GET', history(channel, `since=1&epoch=${second.epoch}`), undefined, reader);
    assert.equal(since.body.recovered, true);
    assert.deepEqual(
      since.body.publications.map((p: any) => p.offset),
      [2],
    );
    const limited = await api(hub, 'GET', history(channel, 'limit=1'), undefined, reader);
    assert.deepEqual(
      limited.body.publications.map((p: any) => p.offset),
      [2],
    );

    const who = await api(hub, 'GET', presence(channel), undefined, reader);
    assert.equal(who.status, 200, JSON.stringify(who.body));
    assert.deepEqual(
      who.body.clients.map((c: any) => [c.userId, c.info]),
      [['bob', { name: 'Bob' }]],
    );
    ws.close();
  });

  it('refuses a channel outside the token patterns with 403 that says so, on history and presence', async () => {
    // Publish rights are not read rights: only `channels` counts.
    const reader = await token({ sub: 'dave', channels: ['mine:*'], publish: ['secret:*'] });
    for (const path of [history('secret:1'), presence('secret:1')]) {
      const answer = await api(hub, 'GET', path, undefined, reader);
      assert.equal(answer.status, 403, path);
      assert.equal(answer.body.error.code, 'forbidden');
      assert.match(answer.body.error.message, /secret:1/);
      assert.match(answer.body.error.message, /"channels" patterns/, answer.body.error.message);
    }
    assert.equal((await api(hub, 'GET', history('mine:1'), undefined, reader)).status, 200);
  });

  it('keeps /api/channels server-only: 403 for a client JWT, with a message that says it needs the API key', async () => {
    const reader = await token({ channels: ['*'] });
    const answer = await api(hub, 'GET', '/api/channels', undefined, reader);
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error.code, 'forbidden');
    assert.match(answer.body.error.message, /API key/);
    assert.equal((await api(hub, 'GET', '/api/channels')).status, 200);
  });

  it('an expired client token is 401, and a wrong key is told it is neither the API key nor a valid token', async () => {
    const expired = await token({ channels: ['*'], expiresIn: -10 });
    const late = await api(hub, 'GET', history('reads:1'), undefined, expired);
    assert.equal(late.status, 401);
    assert.match(late.body.error.message, /expired/);
    for (const [path, method] of [
      ['/api/publish', 'POST'],
      ['/api/channels', 'GET'],
      [history('reads:1'), 'GET'],
    ] as const) {
      const body = method === 'POST' ? { channel: 'a', data: 1 } : undefined;
      const wrong = await api(hub, method, path, body, 'not-the-api-key-0123456789');
      assert.equal(wrong.status, 401, path);
      assert.equal(wrong.body.error.code, 'unauthorized');
      assert.match(wrong.body.error.message, /neither .*API key nor a valid client token/, wrong.body.error.message);
    }
  });

  it('without a token: anonymous channels are readable, others answer 403 saying a token is needed', async () => {
    await publish(hub, 'public:news', 'hello');
    const open = await anonymous(hub, history('public:news'));
    assert.equal(open.status, 200);
    assert.equal(open.body.publications.length, 1);
    assert.equal((await anonymous(hub, presence('public:news'))).status, 200);
    const closed = await anonymous(hub, history('reads:1'));
    assert.equal(closed.status, 403);
    assert.match(closed.body.error.message, /a token is needed/, closed.body.error.message);
    assert.equal((await anonymous(hub, '/api/channels')).status, 401);
  });

  it('an anonymous subscribe to a channel that needs a token says so on every transport (issue 14, item 8)', async () => {
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['private:1'])}`);
    assert.equal(sse.status, 403);
    assert.match(JSON.parse(sse.body ?? '{}').error.message, /a token is needed/);
    const polled = await poll(hub.url, { channels: ['private:1'], timeout: 0 });
    assert.equal(polled.status, 403);
    assert.match(polled.body.error.message, /a token is needed/);
    const ws = await WsTestClient.connect(hub.wsUrl, undefined);
    const refused = await ws.call('subscribe', { channel: 'private:1' });
    assert.equal(refused.error?.code, 'forbidden');
    assert.match(refused.error?.message ?? '', /a token is needed/);
    ws.close();
    // With a token, the refusal names the token's patterns instead.
    const withToken = await poll(hub.url, {
      channels: ['private:1'],
      token: await token({ channels: ['other:*'] }),
      timeout: 0,
    });
    assert.equal(withToken.status, 403);
    assert.match(withToken.body.error.message, /"channels" patterns/);
  });

  it('a hub without anonymous channels still answers 401 to a request without credentials', async () => {
    const closed = await startHub();
    try {
      const answer = await anonymous(closed, history('x'));
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error.code, 'unauthorized');
      assert.equal((await api(closed, 'GET', history('x'), undefined, API_KEY)).status, 200);
    } finally {
      await closed.close();
    }
  });
});
