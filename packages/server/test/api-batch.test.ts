/**
 * `POST /api/broadcast` and `POST /api/batch` (docs/protocol-extensions.md, "Batch publishing"),
 * on the embedded broker, over real HTTP with real WebSocket subscribers. The same paths on Redis
 * and NATS run in test/support/broker-pipeline.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

function assertError(answer: { status: number; body: any }, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.deepEqual(Object.keys(answer.body), ['error']);
  assert.equal(answer.body.error.code, code);
  assert.equal(typeof answer.body.error.message, 'string');
}

/** An item error: exactly {code, message}. */
function assertItemError(error: any, code: string): void {
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message']);
  assert.equal(error.code, code);
}

const MAX_ITEMS = 50;
const MAX_BODY = 64 * 1024;

describe('batch publishing', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ maxBatchItems: MAX_ITEMS, maxBatchBodyBytes: MAX_BODY, maxMessageBytes: 1000 });
  });
  after(() => hub.close());

  it('POST /api/broadcast stores one publication per channel and answers each position in the order given', async () => {
    const channels = ['bc:a', 'bc:b', 'bc:c'];
    const clients = await Promise.all(channels.map(async () => WsTestClient.connect(hub.wsUrl, await token())));
    await Promise.all(clients.map((c, i) => c.ok('subscribe', { channel: channels[i] })));
    await api(hub, 'POST', '/api/publish', { channel: 'bc:b', data: 'before' });
    const answer = await api(hub, 'POST', '/api/broadcast', { channels, data: { hello: 1 }, event: 'greeting' });
    assert.equal(answer.status, 200);
    assert.deepEqual(Object.keys(answer.body), ['results']);
    assert.deepEqual(
      answer.body.results.map((r: any) => [r.channel, r.offset]),
      [
        ['bc:a', 1],
        ['bc:b', 2],
        ['bc:c', 1],
      ],
    );
    for (const [i, result] of answer.body.results.entries()) {
      assert.deepEqual(Object.keys(result).sort(), ['channel', 'epoch', 'offset']);
      const client = clients[i] as WsTestClient;
      await until(() => client.publications(channels[i]).some((p) => p.event === 'greeting'), 'the push');
      const pub = client.publications(channels[i]).find((p) => p.event === 'greeting');
      assert.deepEqual(
        { offset: pub.offset, epoch: pub.epoch, data: pub.data },
        { offset: result.offset, epoch: result.epoch, data: { hello: 1 } },
      );
    }
    for (const c of clients) c.close();
  });

  it('a broadcast’s idempotency key applies per channel', async () => {
    const first = await api(hub, 'POST', '/api/broadcast', {
      channels: ['idem:a', 'idem:b'],
      data: 1,
      idempotencyKey: 'k-1',
    });
    const again = await api(hub, 'POST', '/api/broadcast', {
      channels: ['idem:b', 'idem:a', 'idem:c'],
      data: 2,
      idempotencyKey: 'k-1',
    });
    const byChannel = new Map(first.body.results.map((r: any) => [r.channel, r]));
    assert.deepEqual(again.body.results[0], byChannel.get('idem:b'));
    assert.deepEqual(again.body.results[1], byChannel.get('idem:a'));
    assert.equal(again.body.results[2].offset, 1, 'a channel that had not seen the key stores it');
    for (const ch of ['idem:a', 'idem:b']) {
      const history = await api(hub, 'GET', `/api/channels/${ch}/history`);
      assert.deepEqual(
        history.body.publications.map((p: any) => p.data),
        [1],
      );
    }
  });

  it('a bad channel in a broadcast gets its own error; the others are stored', async () => {
    const answer = await api(hub, 'POST', '/api/broadcast', {
      channels: ['part:ok', 'not a channel', 'part:ok', 42, 'part:two'],
      data: 'x',
    });
    assert.equal(answer.status, 200);
    const [ok, bad, twice, notString, two] = answer.body.results;
    assert.deepEqual([ok.channel, ok.offset], ['part:ok', 1]);
    assert.equal(bad.channel, 'not a channel');
    assertItemError(bad.error, 'bad_channel');
    assert.equal(twice.channel, 'part:ok');
    assertItemError(twice.error, 'bad_request');
    assertItemError(notString.error, 'bad_channel');
    assert.deepEqual([two.channel, two.offset], ['part:two', 1]);
    const history = await api(hub, 'GET', '/api/channels/part:ok/history');
    assert.equal(history.body.publications.length, 1, 'a channel listed twice is published once');
  });

  it('a broadcast refuses a request it cannot make sense of as a whole', async () => {
    assertError(await api(hub, 'POST', '/api/broadcast', { data: 1 }), 400, 'bad_request');
    assertError(await api(hub, 'POST', '/api/broadcast', { channels: [], data: 1 }), 400, 'bad_request');
    assertError(await api(hub, 'POST', '/api/broadcast', { channels: 'x:1', data: 1 }), 400, 'bad_request');
    assertError(await api(hub, 'POST', '/api/broadcast', { channels: ['x:1'] }), 400, 'bad_request');
    assertError(
      await api(hub, 'POST', '/api/broadcast', { channels: ['x:1'], channel: 'x:2', data: 1 }),
      400,
      'bad_request',
    );
    const many = Array.from({ length: MAX_ITEMS + 1 }, (_, i) => `many:${i}`);
    assertError(await api(hub, 'POST', '/api/broadcast', { channels: many, data: 1 }), 413, 'too_large');
    assert.equal((await api(hub, 'GET', '/api/channels/many:0/history')).body.publications.length, 0);
    const big = { channels: ['big:1'], data: 'y'.repeat(MAX_BODY) };
    assertError(await api(hub, 'POST', '/api/broadcast', big), 413, 'too_large');
    assertError(await api(hub, 'GET', '/api/broadcast'), 405, 'method_not_allowed');
    assertError(await api(hub, 'POST', '/api/broadcast', { channels: ['x:1'], data: 1 }, 'wrong'), 401, 'unauthorized');
  });

  it('data over maxMessageBytes in a broadcast is refused per channel, and nothing is stored', async () => {
    const answer = await api(hub, 'POST', '/api/broadcast', { channels: ['size:a', 'size:b'], data: 'z'.repeat(2000) });
    assert.equal(answer.status, 200);
    for (const result of answer.body.results) assertItemError(result.error, 'too_large');
    assert.equal((await api(hub, 'GET', '/api/channels/size:a/history')).body.publications.length, 0);
  });

  it('POST /api/batch answers every command in order, each with its result or its own error', async () => {
    const answer = await api(hub, 'POST', '/api/batch', {
      commands: [
        { method: 'publish', params: { channel: 'batch:a', data: 1 } },
        { method: 'publish', params: { channel: 'bad channel', data: 2 } },
        { method: 'nope', params: {} },
        { method: 'broadcast', params: { channels: ['batch:a', 'batch:b'], data: 3 } },
        { method: 'publish', params: 'not an object' },
        'not a command',
        { method: 'publish', params: { channel: 'batch:a', data: 4, ephemeral: true } },
        { method: 'publish', params: { channel: 'batch:a', data: 5 } },
        { method: 'publish', params: { channel: 'batch:a', event: 'herald.x', data: 6 } },
      ],
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(Object.keys(answer.body), ['replies']);
    const r = answer.body.replies;
    assert.equal(r.length, 9);
    assert.deepEqual(Object.keys(r[0]), ['result']);
    assert.equal(r[0].result.offset, 1);
    const epoch = r[0].result.epoch;
    assertItemError(r[1].error, 'bad_channel');
    assertItemError(r[2].error, 'bad_request');
    assert.deepEqual(r[3].result.results, [
      { channel: 'batch:a', offset: 2, epoch },
      { channel: 'batch:b', offset: 1, epoch: r[3].result.results[1].epoch },
    ]);
    assertItemError(r[4].error, 'bad_request');
    assertItemError(r[5].error, 'bad_request');
    assert.deepEqual(r[6], { result: {} });
    assert.deepEqual(r[7], { result: { offset: 3, epoch } });
    assertItemError(r[8].error, 'reserved_event');
    const history = await api(hub, 'GET', '/api/channels/batch:a/history');
    assert.deepEqual(
      history.body.publications.map((p: any) => p.data),
      [1, 3, 5],
    );
  });

  it('a batch’s publications reach a subscriber in command order, per channel', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    await client.ok('subscribe', { channel: 'order:a' });
    await client.ok('subscribe', { channel: 'order:b' });
    const commands = Array.from({ length: 40 }, (_, i) => ({
      method: 'publish',
      params: { channel: i % 3 === 0 ? 'order:b' : 'order:a', data: i },
    }));
    const answer = await api(hub, 'POST', '/api/batch', { commands });
    for (const reply of answer.body.replies) assert.ok(reply.result.offset > 0);
    await until(() => client.publications().length === 40, 'forty pushes');
    for (const ch of ['order:a', 'order:b']) {
      const sent = commands.filter((c) => c.params.channel === ch).map((c) => c.params.data);
      assert.deepEqual(
        client.publications(ch).map((p) => p.data),
        sent,
      );
      assert.deepEqual(
        client.publications(ch).map((p) => p.offset),
        sent.map((_, i) => i + 1),
      );
    }
    client.close();
  });

  it('a batch refuses a request it cannot make sense of as a whole', async () => {
    assertError(await api(hub, 'POST', '/api/batch', {}), 400, 'bad_request');
    assertError(await api(hub, 'POST', '/api/batch', { commands: [] }), 400, 'bad_request');
    assertError(await api(hub, 'POST', '/api/batch', [{ method: 'publish' }]), 400, 'bad_request');
    const tooMany = Array.from({ length: MAX_ITEMS + 1 }, (_, i) => ({
      method: 'publish',
      params: { channel: 'limit:a', data: i },
    }));
    assertError(await api(hub, 'POST', '/api/batch', { commands: tooMany }), 413, 'too_large');
    // A broadcast counts one per channel.
    const broadcastTooMany = [
      { method: 'publish', params: { channel: 'limit:a', data: 0 } },
      { method: 'broadcast', params: { channels: Array.from({ length: MAX_ITEMS }, (_, i) => `limit:${i}`), data: 1 } },
    ];
    assertError(await api(hub, 'POST', '/api/batch', { commands: broadcastTooMany }), 413, 'too_large');
    assert.equal((await api(hub, 'GET', '/api/channels/limit:a/history')).body.publications.length, 0);
    assertError(await api(hub, 'POST', '/api/batch', '{"commands": ['), 400, 'bad_request');
    assertError(await api(hub, 'GET', '/api/batch'), 405, 'method_not_allowed');
  });

  it('a client token may publish in a batch and a broadcast, within its publish patterns only', async () => {
    const jwt = await token({ sub: 'bob', publish: ['chat:*'] });
    const batch = await api(
      hub,
      'POST',
      '/api/batch',
      {
        commands: [
          { method: 'publish', params: { channel: 'chat:1', data: 'hi' } },
          { method: 'publish', params: { channel: 'news:1', data: 'no' } },
          { method: 'broadcast', params: { channels: ['chat:2', 'news:2'], data: 'both?' } },
        ],
      },
      jwt,
    );
    assert.equal(batch.status, 200);
    const [ok, refused, both] = batch.body.replies;
    assert.equal(ok.result.offset, 1);
    assertItemError(refused.error, 'forbidden');
    assert.equal(both.result.results[0].offset, 1);
    assertItemError(both.result.results[1].error, 'forbidden');
    const direct = await api(hub, 'POST', '/api/broadcast', { channels: ['chat:3', 'news:3'], data: 1 }, jwt);
    assert.equal(direct.body.results[0].offset, 1);
    assertItemError(direct.body.results[1].error, 'forbidden');
    assert.equal((await api(hub, 'GET', '/api/channels/news:1/history')).body.publications.length, 0);
  });
});
