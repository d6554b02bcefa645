/**
 * Durable Streams on a real hub (memory broker) over real HTTP: Herald's credentials, CORS, the
 * channel underneath as Herald's own clients see it, live reads, and bad input. The protocol's own
 * conformance suite runs against `herald serve` in test/durable-streams/conformance.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { attachDurableStreams } from '@herald/durable-streams';
import { API_KEY, api, publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { controls, ds, readSse, startDsHub } from '../../../test/support/ds.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const TEXT = { 'content-type': 'text/plain' };
let hub: TestHub;
let n = 0;
const path = (name: string): string => `t/${name}-${++n}`;

before(async () => {
  hub = await startDsHub({ anonymousChannels: ['ds:public/*'], origins: ['http://allowed.example'] });
});
after(() => hub.close());

describe('credentials (access "auth", the default)', () => {
  it('the API key may do everything; no credentials may do nothing outside the anonymous channels', async () => {
    const p = path('key');
    assert.equal((await ds(hub.url, 'PUT', p, { headers: TEXT, body: 'a' })).status, 201);
    assert.equal((await ds(hub.url, 'POST', p, { headers: TEXT, body: 'b' })).status, 204);
    assert.equal((await ds(hub.url, 'GET', p)).text, 'ab');
    for (const method of ['GET', 'HEAD', 'POST', 'DELETE']) {
      const answer = await ds(hub.url, method, p, {
        bearer: null,
        headers: TEXT,
        body: method === 'POST' ? 'x' : undefined,
      });
      assert.equal(answer.status, 401, method);
    }
    assert.equal((await ds(hub.url, 'PUT', 'public/x', { headers: TEXT, body: 'hi' })).status, 201);
    assert.equal((await ds(hub.url, 'GET', 'public/x', { bearer: null })).text, 'hi');
    assert.equal((await ds(hub.url, 'POST', 'public/x', { bearer: null, headers: TEXT, body: 'x' })).status, 401);
    assert.equal((await ds(hub.url, 'DELETE', p)).status, 204);
  });

  it('a client JWT reads what its channels allow and writes what its publish patterns allow', async () => {
    const reader = await token({ sub: 'r', channels: ['ds:t/*'], publish: [] });
    const writer = await token({ sub: 'w', channels: [], publish: ['ds:t/*'] });
    const p = path('jwt');
    assert.equal((await ds(hub.url, 'PUT', p, { bearer: reader, headers: TEXT })).status, 403);
    assert.equal((await ds(hub.url, 'PUT', p, { bearer: writer, headers: TEXT, body: 'w' })).status, 201);
    assert.equal((await ds(hub.url, 'GET', p, { bearer: writer })).status, 403);
    assert.equal((await ds(hub.url, 'GET', p, { bearer: reader })).text, 'w');
    assert.equal((await ds(hub.url, 'HEAD', p, { bearer: reader })).status, 200);
    // The token may also come as ?token= (EventSource and plain links cannot set headers).
    const viaQuery = await fetch(`${hub.url}/ds/${p}?offset=-1&token=${reader}`);
    assert.equal(await viaQuery.text(), 'w');
    assert.equal((await ds(hub.url, 'GET', 'other/x', { bearer: reader })).status, 403);
    assert.equal((await ds(hub.url, 'GET', p, { bearer: `${reader}x` })).status, 401);
    // A fork needs write on the fork and read on its source.
    const fork = { ...TEXT, 'stream-forked-from': `/${p}` };
    assert.equal((await ds(hub.url, 'PUT', path('fork'), { bearer: writer, headers: fork })).status, 403);
    const both = await token({ sub: 'b', channels: ['ds:t/*'], publish: ['ds:t/*'] });
    assert.equal((await ds(hub.url, 'PUT', path('fork'), { bearer: both, headers: fork })).status, 201);
  });

  it('browsers: CORS for allowed origins (with the protocol headers), 403 for others', async () => {
    const preflight = await fetch(`${hub.url}/ds/${path('cors')}`, {
      method: 'OPTIONS',
      headers: { origin: 'http://allowed.example', 'access-control-request-headers': 'if-none-match' },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /If-None-Match/);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Producer-Seq/);
    const p = path('cors');
    const created = await ds(hub.url, 'PUT', p, { headers: { ...TEXT, origin: 'http://allowed.example' } });
    assert.equal(created.headers.get('access-control-allow-origin'), 'http://allowed.example');
    assert.match(created.headers.get('access-control-expose-headers') ?? '', /Stream-Next-Offset/);
    const refused = await ds(hub.url, 'GET', p, { headers: { origin: 'http://evil.example' } });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    assert.equal(refused.headers.get('x-content-type-options'), 'nosniff');
  });

  it('access "open" lets anyone do anything (development and the conformance suite)', async (t) => {
    const open = await startHub();
    t.after(() => open.close());
    attachDurableStreams(open.server, { access: 'open' });
    assert.equal((await ds(open.url, 'PUT', 'x', { bearer: null, headers: TEXT, body: 'o' })).status, 201);
    assert.equal((await ds(open.url, 'GET', 'x', { bearer: null })).text, 'o');
  });
});

describe('the channel underneath', () => {
  it("a stream at /ds/<path> is the channel ds:<path>; Herald's clients follow and resume it", async () => {
    const p = path('follow');
    const channel = `ds:${p}`;
    await ds(hub.url, 'PUT', p, { headers: TEXT, body: 'one ' });
    const client = await WsTestClient.connect(hub.wsUrl, await token({ channels: [channel] }));
    const subscribed = await client.call('subscribe', { channel });
    const epoch: string = subscribed.result.epoch;
    assert.ok(epoch.length > 0);
    await ds(hub.url, 'POST', p, { headers: TEXT, body: 'two ' });
    await ds(hub.url, 'POST', p, { headers: { ...TEXT, 'stream-closed': 'true' }, body: 'three' });
    await until(() => client.pushes.length >= 2, 'two live publications');
    const live = client.pushes.map((m) => m.pub);
    assert.deepEqual(
      live.map((pub) => [pub.event, pub.data, pub.info?.ds?.closes]),
      [
        ['ds.append', 'two ', undefined],
        ['ds.append', 'three', true],
      ],
    );
    // From its position, a client gets everything after it: the stream so far, exactly once.
    const resumed = await client.call('history', { channel, since: { offset: live[0].offset - 2, epoch } });
    assert.deepEqual(
      resumed.result.publications.map((pub: any) => [pub.event, pub.data]),
      [
        ['ds.create', 'one '],
        ['ds.append', 'two '],
        ['ds.append', 'three'],
      ],
    );
    client.socket.close();
  });

  it('JSON streams: each append is one publication whose data is its messages', async () => {
    const p = path('json');
    await ds(hub.url, 'PUT', p, { headers: { 'content-type': 'application/json' } });
    await ds(hub.url, 'POST', p, { headers: { 'content-type': 'application/json' }, body: '[{"a":1},{"b":2}]' });
    const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(`ds:${p}`)}/history`);
    const pubs = history.body.publications;
    assert.deepEqual(
      pubs.map((pub: any) => [pub.event, pub.data]),
      [
        ['ds.create', null],
        ['ds.append', [{ a: 1 }, { b: 2 }]],
      ],
    );
    assert.equal(pubs[0].info.ds.config.contentType, 'application/json');
  });

  it('publications that are not Durable Streams writes take a position but no reader sees them', async () => {
    const p = path('foreign');
    await ds(hub.url, 'PUT', p, { headers: TEXT, body: 'a' });
    await publish(hub, `ds:${p}`, 'not a write');
    await ds(hub.url, 'POST', p, { headers: TEXT, body: 'b' });
    const read = await ds(hub.url, 'GET', p);
    assert.equal(read.text, 'ab');
    assert.equal(read.headers.get('stream-next-offset'), '0000000000000003_0000000000000000');
  });
});

describe('live reads', () => {
  it('a long-poll at the tail wakes on an append, on a close, and answers 204 after its timeout', async () => {
    const p = path('poll');
    const created = await ds(hub.url, 'PUT', p, { headers: TEXT });
    const tail = created.headers.get('stream-next-offset') as string;
    const waiting = ds(hub.url, 'GET', `${p}?offset=${tail}&live=long-poll`);
    await new Promise((r) => setTimeout(r, 100));
    await ds(hub.url, 'POST', p, { headers: TEXT, body: 'woke' });
    const woke = await waiting;
    assert.equal(woke.status, 200);
    assert.equal(woke.text, 'woke');
    assert.match(woke.headers.get('stream-cursor') ?? '', /^\d+$/);
    const next = woke.headers.get('stream-next-offset') as string;
    const timedOut = await ds(hub.url, 'GET', `${p}?offset=${next}&live=long-poll`);
    assert.equal(timedOut.status, 204);
    assert.equal(timedOut.headers.get('stream-next-offset'), next);
    const closing = ds(hub.url, 'GET', `${p}?offset=${next}&live=long-poll`);
    await new Promise((r) => setTimeout(r, 100));
    await ds(hub.url, 'POST', p, { headers: { 'stream-closed': 'true' } });
    const closed = await closing;
    assert.equal(closed.status, 204);
    assert.equal(closed.headers.get('stream-closed'), 'true');
  });

  it('SSE: the catch-up, then live appends, each data event followed by its control event, until the close', async () => {
    const p = path('sse');
    await ds(hub.url, 'PUT', p, { headers: TEXT, body: 'first' });
    const reading = readSse(
      `${hub.url}/ds/${p}?offset=-1&live=sse`,
      (events) => controls(events).some((c) => c.streamClosed === true),
      { headers: { authorization: `Bearer ${API_KEY}` } },
    );
    await new Promise((r) => setTimeout(r, 150));
    await ds(hub.url, 'POST', p, { headers: TEXT, body: 'second\nline' });
    await ds(hub.url, 'POST', p, { headers: { ...TEXT, 'stream-closed': 'true' }, body: 'last' });
    const { status, events } = await reading;
    assert.equal(status, 200);
    assert.deepEqual(
      events.filter((e) => e.type === 'data').map((e) => e.data),
      ['first', 'second\nline', 'last'],
    );
    for (const [i, e] of events.entries()) if (e.type === 'data') assert.equal(events[i + 1]?.type, 'control');
    const all = controls(events);
    assert.deepEqual(
      all.map((c) => c.streamNextOffset),
      ['0000000000000001', '0000000000000002', '0000000000000003'].map((o) => `${o}_0000000000000000`),
    );
    assert.equal(all.at(-1)?.streamClosed, true);
    assert.equal(all.at(-1)?.streamCursor, undefined);
  });
});

describe('bad input', () => {
  it('gets a clear 4xx and never affects the hub', async () => {
    const p = path('bad');
    await ds(hub.url, 'PUT', p, { headers: TEXT, body: 'ok' });
    const cases: Array<[string, string, Record<string, string>, string | undefined, number]> = [
      ['GET', `${p}?offset=%00`, {}, undefined, 400],
      ['GET', `${p}?offset=9999999999999999_0000000000000000`, {}, undefined, 400],
      ['GET', `${p}?live=sse`, {}, undefined, 400],
      ['GET', `${p}?live=websocket&offset=-1`, {}, undefined, 400],
      ['GET', 'a//b', {}, undefined, 400],
      ['GET', `x/${'y'.repeat(300)}`, {}, undefined, 400],
      ['PUT', path('b'), { 'content-type': 'no type' }, undefined, 400],
      ['PUT', path('b'), { 'stream-ttl': '1e9' }, undefined, 400],
      ['POST', p, { 'content-type': 'text/plain', 'producer-seq': '1' }, 'x', 400],
      ['POST', p, { 'content-type': 'application/json' }, '{', 409],
      ['PATCH', p, {}, undefined, 405],
    ];
    for (const [method, target, headers, body, expected] of cases) {
      const answer = await ds(hub.url, method, target, { headers, body });
      assert.equal(answer.status, expected, `${method} ${target}`);
      assert.equal(JSON.parse(answer.text).error.code.length > 0, true);
    }
    const big = await ds(hub.url, 'POST', p, { headers: TEXT, body: 'x'.repeat(600 * 1024) });
    assert.equal(big.status, 413);
    assert.equal((await ds(hub.url, 'GET', p)).text, 'ok');
  });
});
