/**
 * PROTOCOL.md section 5, `GET /ws` with the `ws` package: `connect` first (4006 after 10 s),
 * the three ways to pass a token, every method's result, each command answered exactly once,
 * pushes, `subscribe` with `since`, join/leave, disconnect pushes before hub-initiated closes,
 * 1009 / 4002 / 4005, and WebSocket pings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Herald, Ws, api, killAll, mint, offsets, publish, range, sleep, uniqueChannel } from './support.ts';

const MAX = 1024;
const LIMIT = MAX + 16 * 1024;
let hub: Herald;
let pinging: Herald;
let token: string;
/** A socket that never sends `connect`; checked by the last test of the file. */
let idle: Ws;
let idleOpenedAt = 0;
before(async () => {
  [hub, pinging] = await Promise.all([
    Herald.start({ HERALD_MAX_MESSAGE_BYTES: String(MAX) }),
    Herald.start({ HERALD_PING_INTERVAL: '1' }),
  ]);
  token = await mint({ sub: 'alice', channels: ['*'], publish: ['*'] });
  idle = await Ws.open(hub.wsUrl);
  idleOpenedAt = Date.now();
});
after(killAll);

/** The hub closed after a `disconnect` push with the same code (the rule of section 5). */
function assertToldBeforeClose(ws: Ws, code: number): void {
  assert.equal(
    ws.close?.code,
    code,
    `close ${code}, got ${JSON.stringify(ws.close)} after ${JSON.stringify(ws.frames).slice(0, 400)}`,
  );
  const pushes = ws.pushes('disconnect');
  assert.equal(pushes.length, 1, `one disconnect push before close ${code}`);
  assert.equal(pushes[0].code, code);
  assert.equal(typeof pushes[0].reason, 'string');
  assert.equal(typeof pushes[0].reconnect, 'boolean');
  assert.ok(!('id' in pushes[0]), 'a push has no id');
}

describe('section 5: connect', () => {
  it('answers clientId, userId, pingInterval, and expiresIn only for a token with exp', async () => {
    const ws = await Ws.open(hub.wsUrl);
    const result = await ws.ok('connect', { token });
    assert.equal(typeof result.clientId, 'string');
    assert.notEqual(result.clientId, '');
    assert.equal(result.userId, 'alice');
    assert.equal(typeof result.pingInterval, 'number');
    assert.ok(result.pingInterval > 0);
    assert.equal(result.expiresIn, undefined, 'no exp, no expiresIn');
    const other = await Ws.open(hub.wsUrl);
    const second = await other.ok('connect', { token: await mint({ sub: 'alice', channels: ['*'], expiresIn: 600 }) });
    assert.notEqual(second.clientId, result.clientId, 'every connection has its own clientId');
    assert.ok(second.expiresIn > 590 && second.expiresIn <= 600, `expiresIn ${second.expiresIn}`);
    ws.end();
    other.end();
  });

  it('takes the token from connect params, ?token= or an Authorization header', async () => {
    const channel = uniqueChannel('how');
    const viaQuery = await Ws.open(`${hub.wsUrl}?token=${encodeURIComponent(token)}`);
    const viaHeader = await Ws.open(hub.wsUrl, { headers: { authorization: `Bearer ${token}` } });
    for (const [name, ws] of [
      ['query', viaQuery],
      ['header', viaHeader],
    ] as const) {
      const result = await ws.ok('connect', {});
      assert.equal(result.userId, 'alice', `userId from the ${name} token`);
      await ws.ok('subscribe', { channel });
    }
    await publish(hub, channel, 1);
    await viaQuery.waitFor(() => viaQuery.pubs(channel).length === 1, 'query client delivery');
    await viaHeader.waitFor(() => viaHeader.pubs(channel).length === 1, 'header client delivery');
    viaQuery.end();
    viaHeader.end();
  });

  it('ends the connection (4002, after a disconnect push) when the first command is not connect', async () => {
    const ws = await Ws.open(hub.wsUrl);
    ws.send({ id: 1, method: 'subscribe', params: { channel: 'x' } });
    await ws.closedWithin(10_000);
    assertToldBeforeClose(ws, 4002);
  });

  it('pingInterval follows HERALD_PING_INTERVAL, the hub pings, and drops a peer that stops answering', async () => {
    const answering = await Ws.connect(pinging.wsUrl, token);
    const silent = await Ws.connect(pinging.wsUrl, token, { autoPong: false });
    assert.equal((await answering.ok('ping')).constructor, Object);
    const connected = await (await Ws.open(pinging.wsUrl)).ok('connect', { token });
    assert.equal(connected.pingInterval, 1);
    let pings = 0;
    answering.socket.on('ping', () => pings++);
    await silent.closedWithin(15_000);
    await answering.waitFor(() => pings >= 2, 'two WebSocket pings');
    assert.equal(answering.close, undefined, 'a peer that answers stays');
    answering.end();
  });
});

describe('section 5: methods', () => {
  it('every method answers the documented result', async () => {
    const channel = uniqueChannel('methods');
    const ws = await Ws.connect(
      hub.wsUrl,
      await mint({ sub: 'alice', channels: ['*'], publish: ['*'], info: { a: 1 } }),
    );
    const sub = await ws.ok('subscribe', { channel });
    assert.equal(sub.offset, 0);
    assert.equal(typeof sub.epoch, 'string');

    const published = await ws.ok('publish', { channel, data: { n: 1 }, event: 'e' });
    assert.deepEqual(Object.keys(published).sort(), ['epoch', 'offset']);
    assert.equal(published.offset, 1);
    assert.equal(published.epoch, sub.epoch);
    assert.deepEqual(await ws.ok('publish', { channel, data: 'x', ephemeral: true }), {});
    await ws.ok('publish', { channel, data: { n: 2 } });
    await ws.ok('publish', { channel, data: { n: 3 } });

    const presence = await ws.ok('presence', { channel });
    assert.ok(Array.isArray(presence.clients));
    assert.equal(presence.clients.length, 1);
    assert.equal(presence.clients[0].userId, 'alice');
    assert.deepEqual(presence.clients[0].info, { a: 1 });

    const history = await ws.ok('history', { channel });
    assert.deepEqual(offsets(history.publications), [1, 2, 3]);
    assert.equal(history.offset, 3);
    assert.equal(history.epoch, sub.epoch);
    const limited = await ws.ok('history', { channel, limit: 1 });
    assert.equal(limited.publications.length, 1);
    const since = await ws.ok('history', { channel, since: { offset: 1, epoch: sub.epoch } });
    assert.deepEqual(offsets(since.publications), [2, 3]);

    const refreshed = await ws.ok('refresh', { token: await mint({ sub: 'alice', channels: ['*'], expiresIn: 300 }) });
    assert.ok(refreshed.expiresIn > 290 && refreshed.expiresIn <= 300, `refresh expiresIn ${refreshed.expiresIn}`);
    assert.deepEqual(await ws.ok('ping'), {});
    assert.deepEqual(await ws.ok('unsubscribe', { channel }), {});
    const seen = ws.pubs(channel).length;
    await publish(hub, channel, { after: 'unsubscribe' });
    await sleep(150);
    assert.equal(ws.pubs(channel).length, seen, 'nothing arrives after unsubscribe');

    for (const frame of ws.frames) {
      if ('id' in frame) {
        assert.ok('result' in frame !== 'error' in frame, `a reply has result or error: ${JSON.stringify(frame)}`);
        assert.ok(!('push' in frame));
      } else {
        assert.equal(typeof frame.push, 'string', `a frame without id is a push: ${JSON.stringify(frame)}`);
      }
    }
    ws.end();
  });

  it('answers each command exactly once, errors included, even when pipelined', async () => {
    const channel = uniqueChannel('once');
    const ws = await Ws.open(hub.wsUrl);
    const commands: Array<[string, Record<string, unknown>]> = [
      ['connect', { token: await mint({ sub: 'alice', channels: [`${channel}*`], publish: [`${channel}*`] }) }],
      ['subscribe', { channel }],
      ['subscribe', { channel: 'forbidden:x' }],
      ['subscribe', { channel: 'bad name' }],
      ['subscribe', {}],
      ['publish', { channel, data: 1 }],
      ['publish', { channel, data: 1, event: 'herald.no' }],
      ['publish', { channel: 'forbidden:x', data: 1 }],
      ['history', { channel, limit: 'many' }],
      ['history', { channel }],
      ['presence', { channel }],
      ['refresh', { token: 'not-a-token' }],
      ['ping', {}],
      ['unsubscribe', { channel }],
      ['unsubscribe', { channel: 'never-subscribed' }],
      ['ping', {}],
    ];
    commands.forEach(([method, params], i) => ws.send({ id: i + 1, method, params }));
    await ws.waitFor(
      () => commands.every((_, i) => ws.frames.some((f) => f.id === i + 1)),
      'every command to be answered',
    );
    await sleep(200);
    for (let id = 1; id <= commands.length; id++) {
      const replies = ws.frames.filter((f) => f.id === id);
      assert.equal(replies.length, 1, `command ${id} (${commands[id - 1]?.[0]}) answered exactly once`);
      const reply = replies[0];
      if (reply.error !== undefined) {
        assert.equal(typeof reply.error.code, 'string');
        assert.equal(typeof reply.error.message, 'string');
      }
    }
    assert.equal(ws.frames.find((f) => f.id === 3)?.error?.code, 'forbidden');
    assert.equal(ws.frames.find((f) => f.id === 13)?.error, undefined, 'ping after errors still works');
    ws.end();
  });
});

describe('section 5: subscribe with since', () => {
  it('answers the missed publications, then live pushes start right after the last one, with none before the answer', async () => {
    const channel = uniqueChannel('since');
    const first = await publish(hub, channel, 0);
    for (let i = 1; i < 10; i++) await publish(hub, channel, i);
    const ws = await Ws.connect(hub.wsUrl, token);
    // A publisher keeps going while the client subscribes: the answer and the pushes must meet exactly.
    let publishing = true;
    const publisher = (async () => {
      for (let i = 10; i < 200 && publishing; i++) await publish(hub, channel, i);
    })();
    await sleep(30);
    const reply = await ws.call('subscribe', { channel, since: { offset: 3, epoch: first.epoch } });
    const answer = reply.result;
    assert.equal(answer.recovered, true);
    await sleep(100);
    publishing = false;
    await publisher;
    const last = (await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history?limit=1`)).json.offset;
    await ws.waitFor(
      () => (ws.pubs(channel).at(-1)?.offset ?? answer.publications.at(-1)?.offset ?? answer.offset) === last,
      'the live pushes to catch up',
    );
    const answerIndex = ws.frames.indexOf(reply);
    const early = ws.frames.slice(0, answerIndex).filter((f) => f.push === 'pub');
    assert.deepEqual(early, [], 'no live push before the answer');
    const received = [...offsets(answer.publications), ...offsets(ws.pubs(channel))];
    assert.deepEqual(received, range(4, last), 'answer then pushes: every later offset once, in order');
    assert.ok(answer.publications.every((p: any) => p.epoch === first.epoch));
    ws.end();
  });

  it('a position that is already the latest recovers with no publications', async () => {
    const channel = uniqueChannel('latest');
    const ack = await publish(hub, channel, 1);
    const ws = await Ws.connect(hub.wsUrl, token);
    const answer = await ws.ok('subscribe', { channel, since: { offset: ack.offset, epoch: ack.epoch } });
    assert.equal(answer.recovered, true);
    assert.deepEqual(answer.publications, []);
    assert.equal(answer.offset, 1);
    ws.end();
  });

  it('answers recovered: false with no publications when the position cannot be served, then delivers live', async () => {
    const channel = uniqueChannel('lost');
    await publish(hub, channel, 1);
    const ack = await publish(hub, channel, 2);
    const ws = await Ws.connect(hub.wsUrl, token);
    const answer = await ws.ok('subscribe', { channel, since: { offset: 1, epoch: 'another-epoch' } });
    assert.equal(answer.recovered, false);
    assert.deepEqual(answer.publications, []);
    assert.equal(answer.offset, 2, 'the answer names the current position');
    assert.equal(answer.epoch, ack.epoch);
    await publish(hub, channel, 3);
    await ws.waitFor(() => ws.pubs(channel).length === 1, 'the live publication');
    assert.equal(ws.pubs(channel)[0].offset, 3);
    ws.end();
  });
});

describe('section 5: join and leave', () => {
  it('are pushed only to subscribers that asked with joinLeave', async () => {
    const channel = uniqueChannel('jl');
    const watcher = await Ws.connect(hub.wsUrl, token);
    await watcher.ok('subscribe', { channel, joinLeave: true });
    const quiet = await Ws.connect(hub.wsUrl, token);
    await quiet.ok('subscribe', { channel });
    const info = { name: 'Bob' };
    const bob = await Ws.open(hub.wsUrl);
    const bobId = (await bob.ok('connect', { token: await mint({ sub: 'bob', channels: ['*'], info }) })).clientId;
    await bob.ok('subscribe', { channel });
    await watcher.waitFor(() => watcher.pushes('join').some((p) => p.client?.userId === 'bob'), 'the join push');
    const join = watcher.pushes('join').find((p) => p.client?.userId === 'bob');
    assert.deepEqual(join, { push: 'join', channel, client: { clientId: bobId, userId: 'bob', info } });
    await bob.ok('unsubscribe', { channel });
    await watcher.waitFor(() => watcher.pushes('leave').some((p) => p.client?.clientId === bobId), 'the leave push');
    const leave = watcher.pushes('leave').find((p) => p.client?.clientId === bobId);
    assert.equal(leave.channel, channel);
    assert.equal(leave.client.userId, 'bob');

    const carol = await Ws.open(hub.wsUrl);
    const carolId = (await carol.ok('connect', { token: await mint({ sub: 'carol', channels: ['*'] }) })).clientId;
    await carol.ok('subscribe', { channel });
    await watcher.waitFor(() => watcher.pushes('join').some((p) => p.client?.clientId === carolId), 'carol joins');
    carol.end();
    await watcher.waitFor(
      () => watcher.pushes('leave').some((p) => p.client?.clientId === carolId),
      'carol leaves by closing',
    );

    await sleep(100);
    assert.deepEqual(
      quiet.frames.filter((f) => f.push === 'join' || f.push === 'leave'),
      [],
      'no join/leave without joinLeave',
    );
    watcher.end();
    quiet.end();
    bob.end();
  });
});

describe('section 5: hub-initiated closes', () => {
  it('4002 for an unparseable frame, after a disconnect push', async () => {
    for (const frame of ['{not json', '', '{"id": 1, "method": "ping"']) {
      const ws = await Ws.connect(hub.wsUrl, token);
      ws.send(frame);
      await ws.closedWithin(10_000);
      assertToldBeforeClose(ws, 4002);
    }
  });

  it('4002 for an unknown method, after a disconnect push', async () => {
    const ws = await Ws.connect(hub.wsUrl, token);
    ws.send({ id: 2, method: 'teleport', params: {} });
    await ws.closedWithin(10_000);
    assertToldBeforeClose(ws, 4002);
  });

  it('1009 only for a frame larger than HERALD_MAX_MESSAGE_BYTES plus 16 KiB', async () => {
    const frameOf = (size: number): string => {
      const head = '{"id":99,"method":"publish","params":{"channel":"big","data":"';
      const tail = '"}}';
      return head + 'x'.repeat(size - head.length - tail.length) + tail;
    };
    const atLimit = await Ws.connect(hub.wsUrl, token);
    atLimit.send(frameOf(LIMIT));
    const reply = await atLimit.call('ping');
    assert.equal(atLimit.close, undefined, 'a frame of exactly the limit is read');
    assert.deepEqual(reply.result, {});
    assert.equal(
      atLimit.frames.find((f) => f.id === 99)?.error?.code !== undefined,
      true,
      'its data is too large: an error answer',
    );
    atLimit.end();

    const over = await Ws.connect(hub.wsUrl, token);
    over.send(frameOf(LIMIT + 1));
    const close = await over.closedWithin(10_000);
    assert.equal(close.code, 1009);

    // With the default HERALD_MAX_MESSAGE_BYTES (65536) the limit is 81920 bytes.
    const defaultAt = await Ws.connect(pinging.wsUrl, token);
    defaultAt.send(frameOf(65536 + 16 * 1024));
    assert.deepEqual((await defaultAt.call('ping')).result, {}, 'a frame of 81920 bytes is read');
    defaultAt.end();
    const defaultOver = await Ws.connect(pinging.wsUrl, token);
    defaultOver.send(frameOf(65536 + 16 * 1024 + 1));
    assert.equal((await defaultOver.closedWithin(10_000)).code, 1009);
  });

  it('4005 when commands exceed the rate limit, after a disconnect push', async () => {
    // The default limit is documented in docs/protocol-extensions.md: 100/s with bursts of 200.
    const ws = await Ws.connect(hub.wsUrl, token);
    for (let i = 0; i < 1000; i++) ws.send({ id: 10 + i, method: 'ping' });
    await ws.closedWithin(10_000);
    assertToldBeforeClose(ws, 4005);
    assert.equal(ws.pushes('disconnect')[0].reconnect, true, '4005: reconnect with backoff');
    const ids = ws.frames.filter((f) => 'id' in f).map((f) => f.id);
    assert.equal(new Set(ids).size, ids.length, 'no command answered twice');
  });

  it('4006 when no connect comes within 10 s, after a disconnect push', async (t) => {
    await idle.closedWithin(Math.max(0, idleOpenedAt + 20_000 - Date.now()));
    t.diagnostic(JSON.stringify({ closedAfterMs: Date.now() - idleOpenedAt }));
    assertToldBeforeClose(idle, 4006);
    assert.ok(Date.now() - idleOpenedAt >= 9_900, 'not before 10 s');
  });
});
