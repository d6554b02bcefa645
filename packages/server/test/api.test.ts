import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API_KEY, api, publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { poll } from '../../../test/support/poll.ts';
import { RawSse } from '../../../test/support/sse.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

/** Asserts the one error shape of PROTOCOL.md section 4. */
function assertError(answer: { status: number; body: any; headers: Headers }, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(answer.body), ['error']);
  assert.deepEqual(Object.keys(answer.body.error).sort(), ['code', 'message']);
  assert.equal(answer.body.error.code, code);
  assert.equal(typeof answer.body.error.message, 'string');
  assert.ok(answer.body.error.message.length > 0);
}

const MAX_MESSAGE_BYTES = 1000;

describe('server API', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ maxMessageBytes: MAX_MESSAGE_BYTES, origins: ['https://app.example'] });
  });
  after(() => hub.close());

  it('POST /api/publish answers offset and epoch, and {} for an ephemeral publication', async () => {
    const first = await api(hub, 'POST', '/api/publish', { channel: 'api:pub', data: { a: 1 }, event: 'created' });
    assert.equal(first.status, 200);
    assert.deepEqual(Object.keys(first.body).sort(), ['epoch', 'offset']);
    assert.equal(first.body.offset, 1);
    const second = await api(hub, 'POST', '/api/publish', { channel: 'api:pub', data: null });
    assert.deepEqual(second.body, { offset: 2, epoch: first.body.epoch });
    const ephemeral = await api(hub, 'POST', '/api/publish', { channel: 'api:pub', data: 'x', ephemeral: true });
    assert.deepEqual(ephemeral.body, {});
    const history = await api(hub, 'GET', '/api/channels/api:pub/history');
    assert.deepEqual(
      history.body.publications.map((p: any) => p.offset),
      [1, 2],
    );
  });

  it('applies an idempotency key once per channel and answers repeats with the first result', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    await client.ok('subscribe', { channel: 'api:idem' });
    const body = { channel: 'api:idem', data: 'once', idempotencyKey: 'order-42-shipped' };
    const answers = await Promise.all([1, 2, 3].map(() => api(hub, 'POST', '/api/publish', body)));
    const again = await api(hub, 'POST', '/api/publish', { ...body, data: 'changed' });
    for (const answer of [...answers, again])
      assert.deepEqual(answer.body, { offset: 1, epoch: answers[0]?.body.epoch });
    const elsewhere = await api(hub, 'POST', '/api/publish', { ...body, channel: 'api:idem2' });
    assert.equal(elsewhere.body.offset, 1);
    await publish(hub, 'api:idem', 'marker');
    await until(() => client.publications('api:idem').length === 2, 'the marker');
    assert.deepEqual(
      client.publications('api:idem').map((p) => p.data),
      ['once', 'marker'],
    );
    const history = await api(hub, 'GET', '/api/channels/api:idem/history');
    assert.deepEqual(
      history.body.publications.map((p: any) => p.data),
      ['once', 'marker'],
    );
    client.close();
  });

  it('accepts a client JWT on /api/publish within its publish patterns only', async () => {
    const jwt = await token({ sub: 'svc', publish: ['jwt:*'], info: { role: 'bot' } });
    const ok = await api(hub, 'POST', '/api/publish', { channel: 'jwt:1', data: 1 }, jwt);
    assert.equal(ok.status, 200);
    const history = await api(hub, 'GET', '/api/channels/jwt:1/history');
    assert.deepEqual(history.body.publications[0].info, { role: 'bot' });
    assertError(await api(hub, 'POST', '/api/publish', { channel: 'other:1', data: 1 }, jwt), 403, 'forbidden');
    assertError(await api(hub, 'GET', '/api/channels', undefined, jwt), 403, 'forbidden');
    // History and presence need `channels` patterns (v1.1); this token has only `publish` ones.
    const publishOnly = await token({ sub: 'svc', channels: [], publish: ['jwt:*'] });
    assertError(await api(hub, 'GET', '/api/channels/jwt:1/history', undefined, publishOnly), 403, 'forbidden');
    const expired = await token({ sub: 'svc', publish: ['jwt:*'], expiresIn: -10 });
    assertError(await api(hub, 'POST', '/api/publish', { channel: 'jwt:1', data: 1 }, expired), 401, 'unauthorized');
  });

  it('keeps the _herald: namespace to the hub: 403 for the API key, client tokens and client commands', async () => {
    const anything = await token({ sub: 'mallory', publish: ['*'], channels: ['*'] });
    assertError(await api(hub, 'POST', '/api/publish', { channel: '_herald:stats', data: 1 }), 403, 'forbidden');
    assertError(
      await api(hub, 'POST', '/api/publish', { channel: '_herald:stats', data: 1 }, anything),
      403,
      'forbidden',
    );
    const ws = new WsTestClient(hub.wsUrl);
    await ws.opened;
    await ws.call('connect', { token: anything });
    const refused = await ws.call('publish', { channel: '_herald:stats', data: { fake: true } });
    assert.equal(refused.error?.code, 'forbidden');
    assert.match(refused.error?.message ?? '', /reserved/);
    ws.close();
    const accepted = await hub.server.hub.publishInternal({ channel: '_herald:stats', data: 1, ephemeral: true });
    assert.deepEqual(accepted, {}, 'the hub itself may');
  });

  it('answers 401 without credentials or with a wrong key', async () => {
    const none = await fetch(`${hub.url}/api/publish`, { method: 'POST', body: '{"channel":"a","data":1}' });
    assertError({ status: none.status, body: await none.json(), headers: none.headers }, 401, 'unauthorized');
    assertError(await api(hub, 'POST', '/api/publish', { channel: 'a', data: 1 }, 'wrong-key'), 401, 'unauthorized');
    const basic = await fetch(`${hub.url}/api/channels`, { headers: { authorization: `Basic ${API_KEY}` } });
    assertError({ status: basic.status, body: await basic.json(), headers: basic.headers }, 401, 'unauthorized');
    assertError(await api(hub, 'GET', '/api/channels', undefined, 'wrong-key'), 401, 'unauthorized');
  });

  it('answers 400 for bad input', async () => {
    const bad: Array<[unknown, string]> = [
      ['{not json', 'bad_request'],
      ['[1,2]', 'bad_request'],
      ['"text"', 'bad_request'],
      [{ channel: 'bad channel', data: 1 }, 'bad_channel'],
      [{ channel: 'x'.repeat(201), data: 1 }, 'bad_channel'],
      [{ data: 1 }, 'bad_channel'],
      [{ channel: 'a' }, 'bad_request'],
      [{ channel: 'a', data: 1, event: 'herald.connected' }, 'reserved_event'],
      [{ channel: 'a', data: 1, event: 5 }, 'bad_request'],
      [{ channel: 'a', data: 1, event: '' }, 'bad_request'],
      [{ channel: 'a', data: 1, event: 'line\nbreak' }, 'bad_request'],
      [{ channel: 'a', data: 1, event: 'e'.repeat(1001) }, 'bad_request'],
      [{ channel: 'a', data: 1, idempotencyKey: 'tab\tkey' }, 'bad_request'],
      [{ channel: 'a', data: 1, ephemeral: 'yes' }, 'bad_request'],
      [{ channel: 'a', data: 1, idempotencyKey: '' }, 'bad_request'],
      [{ channel: 'a', data: 1, idempotencyKey: 7 }, 'bad_request'],
    ];
    for (const [body, code] of bad) assertError(await api(hub, 'POST', '/api/publish', body), 400, code);
    const empty = await fetch(`${hub.url}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    assertError({ status: empty.status, body: await empty.json(), headers: empty.headers }, 400, 'bad_request');
    for (const query of ['limit=x', 'limit=-1', 'since=3', 'since=x&epoch=e', 'since=1&epoch=a~b']) {
      assertError(await api(hub, 'GET', `/api/channels/a/history?${query}`), 400, 'bad_request');
    }
    assertError(await api(hub, 'GET', '/api/channels/bad%20channel/history'), 400, 'bad_channel');
    assertError(await api(hub, 'GET', '/api/channels/%E0%A4%A/history'), 400, 'bad_channel');
  });

  it('takes event names in any script, delivered as they are on every transport', async () => {
    // PROTOCOL.md section 2 reserves only the herald. prefix: names are not limited to ASCII.
    const channel = 'api:events';
    const names = ['statut_mis_à_jour', '注文', 'order shipped 🚚', 'e'.repeat(1000)];
    const jwt = await token();
    const ws = await WsTestClient.connect(hub.wsUrl, jwt);
    await ws.ok('subscribe', { channel });
    const sse = await RawSse.open(`${hub.url}/sse?channel=${channel}&token=${jwt}`);
    const first = await poll(hub.url, { channels: [channel], token: jwt, timeout: 1 });
    try {
      for (const [i, event] of names.entries()) await publish(hub, channel, i, { event, idempotencyKey: `clé-${i}` });
      await until(
        () => ws.publications(channel).length === names.length && sse.publications().length === names.length,
        'deliveries',
      );
      assert.deepEqual(
        ws.publications(channel).map((p) => p.event),
        names,
      );
      assert.deepEqual(
        sse.events.filter((e) => e.event !== 'herald.connected').map((e) => e.event),
        names,
      );
      const polled = await poll(hub.url, { channels: [channel], token: jwt, cursor: first.body.cursor, timeout: 1 });
      assert.deepEqual(
        polled.body.publications.map((p: { event: string }) => p.event),
        names,
      );
    } finally {
      ws.close();
      sse.close();
    }
  });

  it('answers 404 for unknown routes and 405 for the wrong method', async () => {
    assertError(await api(hub, 'GET', '/api/nothing'), 404, 'not_found');
    assertError(await api(hub, 'GET', '/api/channels/a/subscribers'), 404, 'not_found');
    assertError(await api(hub, 'GET', '/nothing-here'), 404, 'not_found');
    assertError(await api(hub, 'GET', '/api/publish'), 405, 'method_not_allowed');
    assertError(await api(hub, 'POST', '/api/channels', {}), 405, 'method_not_allowed');
    assertError(await api(hub, 'PUT', '/api/channels/a/history'), 405, 'method_not_allowed');
    assertError(await api(hub, 'DELETE', '/api/channels/a/presence'), 405, 'method_not_allowed');
    assertError(await api(hub, 'POST', '/api/channels/a/presence', {}), 405, 'method_not_allowed');
  });

  it('answers 413 for a body over the limit and for data over maxMessageBytes', async () => {
    const exact = await api(hub, 'POST', '/api/publish', { channel: 'big', data: 'x'.repeat(MAX_MESSAGE_BYTES - 2) });
    assert.equal(exact.status, 200, 'data of exactly maxMessageBytes is accepted');
    assertError(
      await api(hub, 'POST', '/api/publish', { channel: 'big', data: 'x'.repeat(MAX_MESSAGE_BYTES - 1) }),
      413,
      'too_large',
    );
    assertError(
      await api(hub, 'POST', '/api/publish', { channel: 'big', data: 'é'.repeat(MAX_MESSAGE_BYTES / 2) }),
      413,
      'too_large',
    );
    assertError(
      await api(hub, 'POST', '/api/publish', { channel: 'big', data: 'x'.repeat(MAX_MESSAGE_BYTES + 20_000) }),
      413,
      'too_large',
    );
    const history = await api(hub, 'GET', '/api/channels/big/history');
    assert.equal(history.body.publications.length, 1);
    assert.equal((await api(hub, 'GET', '/healthz')).status, 200);
  });

  it('GET history answers limit, since with epoch, and recovered', async () => {
    for (let i = 1; i <= 5; i++) await publish(hub, 'api:h/x=y@z', i);
    const all = await api(hub, 'GET', `/api/channels/${encodeURIComponent('api:h/x=y@z')}/history`);
    assert.equal(all.status, 200);
    assert.deepEqual(Object.keys(all.body).sort(), ['epoch', 'offset', 'publications']);
    assert.deepEqual(
      all.body.publications.map((p: any) => p.offset),
      [1, 2, 3, 4, 5],
    );
    assert.equal(all.body.publications[0].channel, 'api:h/x=y@z');
    const path = `/api/channels/${encodeURIComponent('api:h/x=y@z')}/history`;
    const latest = await api(hub, 'GET', `${path}?limit=2`);
    assert.deepEqual(
      latest.body.publications.map((p: any) => p.offset),
      [4, 5],
    );
    const since = await api(hub, 'GET', `${path}?since=3&epoch=${all.body.epoch}`);
    assert.deepEqual(
      since.body.publications.map((p: any) => p.offset),
      [4, 5],
    );
    assert.equal(since.body.recovered, true);
    const sinceLimited = await api(hub, 'GET', `${path}?since=1&epoch=${all.body.epoch}&limit=2`);
    assert.deepEqual(
      sinceLimited.body.publications.map((p: any) => p.offset),
      [2, 3],
    );
    const otherEpoch = await api(hub, 'GET', `${path}?since=3&epoch=stale`);
    assert.deepEqual(otherEpoch.body, { publications: [], offset: 5, epoch: all.body.epoch, recovered: false });
    const empty = await api(hub, 'GET', '/api/channels/api:never/history');
    assert.deepEqual(empty.body.publications, []);
    assert.equal(empty.body.offset, 0);
  });

  it('GET /api/channels lists active channels with subscriber counts, and presence lists the clients', async () => {
    const a = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'ann', info: { seat: 1 } }));
    const b = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'ben' }));
    await a.ok('subscribe', { channel: 'api:room' });
    await b.ok('subscribe', { channel: 'api:room' });
    await b.ok('subscribe', { channel: 'api:room2' });
    const channels = await api(hub, 'GET', '/api/channels');
    assert.equal(channels.status, 200);
    const counts = Object.fromEntries(channels.body.channels.map((c: any) => [c.channel, c.subscribers]));
    assert.equal(counts['api:room'], 2);
    assert.equal(counts['api:room2'], 1);
    for (const entry of channels.body.channels) assert.deepEqual(Object.keys(entry).sort(), ['channel', 'subscribers']);
    const presence = await api(hub, 'GET', '/api/channels/api:room/presence');
    assert.deepEqual(presence.body.clients.map((c: any) => c.userId).sort(), ['ann', 'ben']);
    const ann = presence.body.clients.find((c: any) => c.userId === 'ann');
    assert.deepEqual(ann, { clientId: a.replies.get(1)?.result.clientId, userId: 'ann', info: { seat: 1 } });
    b.close();
    await b.closed;
    let after: any = undefined;
    for (let i = 0; i < 100; i++) {
      after = await api(hub, 'GET', '/api/channels');
      if (!after.body.channels.some((c: any) => c.channel === 'api:room2')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(
      after.body.channels.some((c: any) => c.channel === 'api:room2'),
      false,
    );
    a.close();
  });

  it('checks the origin of browser requests and answers CORS preflights', async () => {
    const allowed = await fetch(`${hub.url}/api/publish`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /Authorization/i);
    const refusedPreflight = await fetch(`${hub.url}/api/publish`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(refusedPreflight.status, 403);
    const refused = await fetch(`${hub.url}/api/publish`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', authorization: `Bearer ${API_KEY}` },
      body: '{"channel":"cors","data":1}',
    });
    assertError(
      { status: refused.status, body: await refused.json(), headers: refused.headers },
      403,
      'origin_not_allowed',
    );
    assert.equal((await api(hub, 'GET', '/api/channels/cors/history')).body.offset, 0);
    const browser = await fetch(`${hub.url}/api/publish`, {
      method: 'POST',
      headers: { origin: 'https://app.example', authorization: `Bearer ${API_KEY}` },
      body: '{"channel":"cors","data":1}',
    });
    assert.equal(browser.status, 200);
    assert.equal(browser.headers.get('access-control-allow-origin'), 'https://app.example');
  });
});
