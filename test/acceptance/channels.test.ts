/**
 * PROTOCOL.md section 2: channel names, patterns with `*`, the publication object (the same on
 * every transport), offsets and epochs, reserved `herald.` events and ephemeral publications.
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
  offsets,
  poll,
  publish,
  query,
  range,
  sleep,
  uniqueChannel,
} from './support.ts';

let hub: Herald;
before(async () => {
  hub = await Herald.start({ HERALD_ANONYMOUS_CHANNELS: 'public:*,news,a.b' });
});
after(killAll);

describe('section 2: channel names', () => {
  const valid = ['ABCxyz019', 'all_.:@/=-chars', 'orders:42', ':leading-colon', 'x'.repeat(200), 'a/b/c=d@e.f-g_h'];
  const invalid = [
    '',
    'x'.repeat(201),
    'has space',
    'hash#',
    'star*',
    'comma,',
    'tilde~',
    'caf\u00e9',
    'q?x',
    'per%cent',
    'new\nline',
    'trailing\n',
    ' lead',
  ];

  it('accepts every name matching ^[A-Za-z0-9_.:@/=-]{1,200}$ on publish, history, WebSocket, SSE and poll', async () => {
    const token = await mint({ channels: ['*'], publish: ['*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    for (const name of valid) {
      const channel = name;
      const sub = await ws.call('subscribe', { channel });
      assert.equal(sub.error, undefined, `subscribe ${name}: ${JSON.stringify(sub.error)}`);
      const published = await api(hub, 'POST', '/api/publish', { channel, data: { name } });
      assert.equal(published.status, 200, `publish ${name}: ${published.text}`);
      const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
      assert.equal(history.status, 200, `history ${name}: ${history.text}`);
      assert.equal(history.json.publications.at(-1)?.channel, channel);
      const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
      assert.equal(sse.status, 200, `SSE ${name}: ${sse.body}`);
      sse.close();
      const polled = await poll(hub, [channel], { token, timeout: '0' });
      assert.equal(polled.status, 200, `poll ${name}: ${polled.text}`);
    }
    await ws.waitFor(() => ws.pubs().length === valid.length, 'a publication on every valid channel');
    ws.end();
  });

  it('refuses every other name with a clear error on every entry point', async () => {
    const token = await mint({ channels: ['*'], publish: ['*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    for (const name of invalid) {
      const sub = await ws.call('subscribe', { channel: name });
      assert.equal(typeof sub.error?.code, 'string', `WebSocket subscribe ${JSON.stringify(name)} is refused`);
      const pub = await ws.call('publish', { channel: name, data: 1 });
      assert.equal(typeof pub.error?.code, 'string', `WebSocket publish ${JSON.stringify(name)} is refused`);
      assertError(
        await api(hub, 'POST', '/api/publish', { channel: name, data: 1 }),
        400,
        `API publish ${JSON.stringify(name)}`,
      );
      if (name !== '') {
        assertError(
          await api(hub, 'GET', `/api/channels/${encodeURIComponent(name)}/history`),
          400,
          `history ${JSON.stringify(name)}`,
        );
      }
      const sse = await Sse.open(`${hub.url}/sse?${query([name], { token })}`);
      assertError(
        { status: sse.status, headers: sse.headers, text: sse.body, json: sse.json },
        400,
        `SSE ${JSON.stringify(name)}`,
      );
      assertError(await poll(hub, [name], { token, timeout: '0' }), 400, `poll ${JSON.stringify(name)}`);
    }
    assert.equal(ws.close, undefined, 'a bad channel name is an error answer, not a closed connection');
    ws.end();
  });
});

describe('section 2: patterns', () => {
  async function canSubscribe(patterns: string[], channel: string): Promise<boolean> {
    const token = await mint({ channels: patterns });
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    sse.close();
    if (sse.status !== 200 && sse.status !== 403) throw new Error(`SSE ${channel}: ${sse.status} ${sse.body}`);
    return sse.status === 200;
  }

  it('`*` matches any run of characters, including `:` and `/`; other characters match themselves', async () => {
    const cases: Array<[string[], string, boolean]> = [
      [['orders:*'], 'orders:42', true],
      [['orders:*'], 'orders:42:items/7', true],
      [['orders:*'], 'order:42', false],
      [['orders:*'], 'xorders:42', false],
      [['orders:*'], 'orders', false],
      [['chat:*:typing'], 'chat:room/1:typing', true],
      [['chat:*:typing'], 'chat:room1:read', false],
      [['*'], 'anything:at/all', true],
      [['*:42'], 'orders:42', true],
      [['*:42'], 'orders:420', false],
      [['a.b'], 'a.b', true],
      [['a.b'], 'aXb', false],
      [['user:alice'], 'user:alice', true],
      [['user:alice'], 'user:alice2', false],
      [['user:alice'], 'user:alic', false],
      [['x', 'y:*'], 'y:1', true],
      [['x', 'y:*'], 'z', false],
    ];
    for (const [patterns, channel, expected] of cases) {
      assert.equal(await canSubscribe(patterns, channel), expected, `${JSON.stringify(patterns)} vs ${channel}`);
    }
  });

  it('patterns in HERALD_ANONYMOUS_CHANNELS follow the same rule for clients without a token', async () => {
    const cases: Array<[string, boolean]> = [
      ['public:x', true],
      ['public:x/y:z', true],
      ['news', true],
      ['newsroom', false],
      ['a.b', true],
      ['aXb', false],
      ['private:1', false],
    ];
    for (const [channel, expected] of cases) {
      const sse = await Sse.open(`${hub.url}/sse?${query([channel])}`);
      sse.close();
      assert.equal(sse.status === 200, expected, `anonymous ${channel}: ${sse.status} ${sse.body}`);
      if (!expected)
        assert.ok([401, 403].includes(sse.status), `refused anonymous ${channel} with 401 or 403, got ${sse.status}`);
    }
  });
});

describe('section 2: publications', () => {
  it('have channel, offset from 1, epoch, data, event, ts; the same object on every transport', async () => {
    const channel = uniqueChannel('orders');
    const token = await mint({ channels: ['*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    const sub = await ws.ok('subscribe', { channel });
    assert.equal(sub.offset, 0, 'an empty stream is at offset 0');
    assert.equal(typeof sub.epoch, 'string');
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    const start = await poll(hub, [channel], { token, timeout: '0' });
    const polled = poll(hub, [channel], { token, cursor: start.json.cursor, timeout: '20' });
    await sleep(100);

    const before = Date.now();
    const ack = await publish(hub, channel, { status: 'shipped' }, { event: 'status_update' });
    const acked = Date.now();
    assert.deepEqual(Object.keys(ack).sort(), ['epoch', 'offset']);
    assert.equal(ack.offset, 1, 'the first publication of a stream has offset 1');

    await ws.waitFor(() => ws.pubs(channel).length === 1, 'the websocket publication');
    const pub = ws.pubs(channel)[0];
    assert.equal(pub.channel, channel);
    assert.equal(pub.offset, 1);
    assert.equal(pub.epoch, ack.epoch);
    assert.equal(pub.epoch, sub.epoch, 'the epoch of the empty stream continues');
    assert.deepEqual(pub.data, { status: 'shipped' });
    assert.equal(pub.event, 'status_update');
    assert.equal(typeof pub.ts, 'number');
    assert.ok(pub.ts >= before - 1 && pub.ts <= acked + 1, `ts ${pub.ts} is the acceptance time (${before}..${acked})`);

    await sse.waitFor(() => sse.pubs().length === 1, 'the SSE publication');
    const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
    const wsHistory = await ws.ok('history', { channel });
    const viaPoll = (await polled).json.publications;
    assert.deepEqual(sse.pubs()[0], pub, 'SSE carries the same object');
    assert.deepEqual(viaPoll, [pub], 'poll carries the same object');
    assert.deepEqual(history.json.publications, [pub], 'history API carries the same object');
    assert.deepEqual(wsHistory.publications, [pub], 'WebSocket history carries the same object');
    ws.end();
    sse.close();
  });

  it('leave `event` out when none was given, and grow the offset by exactly 1 per publication', async () => {
    const channel = uniqueChannel('plain');
    const token = await mint({ channels: ['*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    await ws.ok('subscribe', { channel });
    const acks = [];
    for (let i = 0; i < 5; i++) acks.push(await publish(hub, channel, i));
    assert.deepEqual(offsets(acks), range(1, 5));
    assert.equal(new Set(acks.map((a) => a.epoch)).size, 1, 'one epoch');
    await ws.waitFor(() => ws.pubs(channel).length === 5, 'five publications');
    for (const pub of ws.pubs(channel)) assert.ok(!('event' in pub), `no event field: ${JSON.stringify(pub)}`);
    const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
    for (const pub of history.json.publications) assert.ok(!('event' in pub), 'no event field in history');
    assert.equal(history.json.offset, 5, 'the channel position is its latest offset');
    const again = await Ws.connect(hub.wsUrl, token);
    assert.equal((await again.ok('subscribe', { channel })).offset, 5, 'subscribe answers the latest stored offset');
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    assert.equal(
      sse.named('herald.connected')[0].channels[channel].offset,
      5,
      'herald.connected answers the latest offset',
    );
    ws.end();
    again.end();
    sse.close();
  });

  it('carry any JSON value as data, falsy ones included, unchanged', async () => {
    const channel = uniqueChannel('values');
    const token = await mint({ channels: ['*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    await ws.ok('subscribe', { channel });
    const values = [
      0,
      false,
      '',
      [],
      {},
      'text',
      3.25,
      [1, 'two', { three: null }],
      { nested: { deep: [true] } },
      'line\nbreak \u2028 \u00e9 \ud83d\ude00',
    ];
    for (const data of values) {
      const answer = await api(hub, 'POST', '/api/publish', { channel, data });
      assert.equal(answer.status, 200, `data ${JSON.stringify(data)}: ${answer.text}`);
    }
    await ws.waitFor(() => ws.pubs(channel).length === values.length, 'every value');
    assert.deepEqual(
      ws.pubs(channel).map((p) => p.data),
      values,
    );
    const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
    assert.deepEqual(
      history.json.publications.map((p: any) => p.data),
      values,
    );
    ws.end();
  });

  it('accept any event name that does not start with `herald.`, and carry it on SSE', async () => {
    // The contract restricts event names only by the reserved `herald.` prefix. Names that an SSE
    // `event:` line can carry (no CR or LF) must go through unchanged.
    const channel = uniqueChannel('names');
    const token = await mint({ channels: ['*'] });
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    const names = [
      'status_update',
      'Herald.upper',
      'with space',
      'statut_mis_\u00e0_jour',
      '\u6ce8\u6587',
      'e'.repeat(250),
    ];
    const refused: string[] = [];
    const accepted: string[] = [];
    for (const event of names) {
      const answer = await api(hub, 'POST', '/api/publish', { channel, data: event, event });
      if (answer.status === 200) accepted.push(event);
      else
        refused.push(
          `${JSON.stringify(event.length > 20 ? `${event.slice(0, 8)}...(${event.length})` : event)}: ${answer.status} ${answer.json?.error?.message}`,
        );
    }
    await sse.waitFor(() => sse.pubEvents().length === accepted.length, 'the accepted ones on SSE');
    assert.deepEqual(
      sse.pubEvents().map((e) => e.event),
      accepted,
      'the SSE event: line carries the name',
    );
    sse.close();
    assert.deepEqual(refused, [], 'event names refused although the contract allows them');
  });

  it('refuse event names starting with `herald.` on every publish path, storing nothing', async () => {
    const channel = uniqueChannel('reserved');
    const token = await mint({ channels: ['*'], publish: ['*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    await ws.ok('subscribe', { channel });
    for (const event of ['herald.connected', 'herald.', 'herald.custom']) {
      assertError(await api(hub, 'POST', '/api/publish', { channel, data: 1, event }), 400, `API event ${event}`);
      assertError(
        await api(hub, 'POST', '/api/publish', { channel, data: 1, event }, token),
        400,
        `API event ${event} with a client token`,
      );
      const reply = await ws.call('publish', { channel, data: 1, event });
      assert.equal(typeof reply.error?.code, 'string', `WebSocket publish event ${event} is refused`);
      const ephemeral = await api(hub, 'POST', '/api/publish', { channel, data: 1, event, ephemeral: true });
      assertError(ephemeral, 400, `ephemeral event ${event}`);
    }
    const ok = await publish(hub, channel, 1, { event: 'heraldry' });
    assert.equal(ok.offset, 1, 'refused publications took no offset; `heraldry` is not reserved');
    await ws.waitFor(() => ws.pubs(channel).length === 1, 'the accepted publication');
    await sleep(100);
    assert.deepEqual(
      ws.pubs(channel).map((p) => p.event),
      ['heraldry'],
      'nothing refused was delivered',
    );
    ws.end();
  });
});

describe('section 2: ephemeral publications', () => {
  it('are delivered live without offset or epoch, never stored and never replayed', async () => {
    const channel = uniqueChannel('typing');
    const token = await mint({ channels: ['*'], publish: ['*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    const sub = await ws.ok('subscribe', { channel });
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');

    const viaApi = await api(hub, 'POST', '/api/publish', { channel, data: { typing: true }, ephemeral: true });
    assert.equal(viaApi.status, 200);
    assert.deepEqual(viaApi.json, {}, 'an ephemeral publish answers {}');
    const viaWs = await ws.ok('publish', { channel, data: { typing: false }, ephemeral: true });
    assert.deepEqual(viaWs, {}, 'an ephemeral WebSocket publish answers {}');

    await ws.waitFor(() => ws.pubs(channel).length === 2, 'both ephemeral publications live');
    for (const pub of ws.pubs(channel)) {
      assert.ok(!('offset' in pub) && !('epoch' in pub), `no offset/epoch: ${JSON.stringify(pub)}`);
      assert.equal(pub.channel, channel);
      assert.equal(typeof pub.ts, 'number', 'an ephemeral publication has its acceptance time too');
    }
    assert.deepEqual(
      ws.pubs(channel).map((p) => p.data),
      [{ typing: true }, { typing: false }],
    );
    await sse.waitFor(() => sse.pubEvents().length === 2, 'both ephemeral publications on SSE');
    for (const event of sse.pubEvents()) assert.equal(event.id, undefined, 'an ephemeral SSE event has no id: line');

    const stored = await publish(hub, channel, { n: 1 });
    assert.equal(stored.offset, 1, 'ephemeral publications take no offset');
    const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
    assert.deepEqual(offsets(history.json.publications), [1], 'history holds only the stored one');
    const resumed = await Ws.connect(hub.wsUrl, token);
    const answer = await resumed.ok('subscribe', { channel, since: { offset: 0, epoch: sub.epoch } });
    assert.equal(answer.recovered, true);
    assert.deepEqual(
      answer.publications.map((p: any) => p.data),
      [{ n: 1 }],
      'a resume replays no ephemeral publication',
    );
    ws.end();
    resumed.end();
    sse.close();
  });

  it('history of an empty channel is at offset 0 with an epoch', async () => {
    const channel = uniqueChannel('empty');
    const answer = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json.publications, []);
    assert.equal(answer.json.offset, 0);
    assert.equal(typeof answer.json.epoch, 'string');
  });
});
