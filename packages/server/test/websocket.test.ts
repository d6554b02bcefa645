import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, publish, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

describe('WebSocket transport', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('connects, subscribes and receives a publication made over HTTP', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'alice' }));
    const sub = await client.ok('subscribe', { channel: 'orders:1' });
    assert.equal(sub.offset, 0);
    assert.equal(typeof sub.epoch, 'string');
    const ack = await publish(hub, 'orders:1', { status: 'shipped' }, { event: 'status_update' });
    assert.equal(ack.offset, 1);
    await until(() => client.publications().length === 1, 'the publication');
    const pub = client.publications()[0];
    assert.deepEqual(
      { channel: pub.channel, offset: pub.offset, epoch: pub.epoch, data: pub.data, event: pub.event },
      { channel: 'orders:1', offset: 1, epoch: sub.epoch, data: { status: 'shipped' }, event: 'status_update' },
    );
    assert.equal(typeof pub.ts, 'number');
    client.close();
  });

  it('closes with 4001 for a token with a bad signature', async () => {
    const client = new WsTestClient(hub.wsUrl);
    await client.opened;
    client.socket.send(
      JSON.stringify({
        id: 1,
        method: 'connect',
        params: { token: await token({ secret: 'another-secret-0123456789abcdef0123' }) },
      }),
    );
    assert.equal(await client.closed, 4001);
    assert.equal(client.pushes.at(-1)?.push, 'disconnect');
    assert.equal(client.pushes.at(-1)?.code, 4001);
  });
});

describe('WebSocket connect', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ pingIntervalSeconds: 7, anonymousChannels: ['public:*'] });
  });
  after(() => hub.close());

  it('answers connect with clientId, userId, pingInterval and expiresIn', async () => {
    const client = new WsTestClient(hub.wsUrl);
    await client.opened;
    const result = await client.ok('connect', { token: await token({ sub: 'alice', expiresIn: 3600 }) });
    assert.equal(typeof result.clientId, 'string');
    assert.ok(result.clientId.length > 0);
    assert.equal(result.userId, 'alice');
    assert.equal(result.pingInterval, 7);
    assert.ok(result.expiresIn > 3590 && result.expiresIn <= 3600, `expiresIn ${result.expiresIn}`);
    const other = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'alice' }));
    const second = await other.ok('ping');
    assert.deepEqual(second, {});
    client.close();
    other.close();
  });

  it('leaves expiresIn out for a token without exp', async () => {
    const client = new WsTestClient(hub.wsUrl);
    await client.opened;
    const result = await client.ok('connect', { token: await token({ sub: 'bob' }) });
    assert.equal('expiresIn' in result, false);
    client.close();
  });

  it('takes the token from ?token= and from the Authorization header', async () => {
    const viaQuery = new WsTestClient(`${hub.wsUrl}?token=${await token({ sub: 'query-user' })}`);
    await viaQuery.opened;
    assert.equal((await viaQuery.ok('connect')).userId, 'query-user');
    const viaHeader = new WsTestClient(hub.wsUrl, {
      headers: { authorization: `Bearer ${await token({ sub: 'header-user' })}` },
    });
    await viaHeader.opened;
    assert.equal((await viaHeader.ok('connect')).userId, 'header-user');
    viaQuery.close();
    viaHeader.close();
  });

  it('prefers the token in connect params over one in the URL', async () => {
    const client = new WsTestClient(`${hub.wsUrl}?token=${await token({ sub: 'url-user' })}`);
    await client.opened;
    assert.equal((await client.ok('connect', { token: await token({ sub: 'param-user' }) })).userId, 'param-user');
    client.close();
  });

  it('lets anonymous clients in only to the anonymous channels', async () => {
    const client = await WsTestClient.connect(hub.wsUrl);
    assert.equal(client.replies.get(1)?.result.userId, undefined);
    const sub = await client.ok('subscribe', { channel: 'public:news' });
    assert.equal(sub.offset, 0);
    const refused = await client.call('subscribe', { channel: 'private:1' });
    assert.equal(refused.error?.code, 'forbidden');
    const publishing = await client.call('publish', { channel: 'public:news', data: 1 });
    assert.equal(publishing.error?.code, 'forbidden');
    client.close();
  });

  it('accepts commands pipelined right behind connect, answering them in order after it', async () => {
    const client = new WsTestClient(hub.wsUrl);
    await client.opened;
    const calls = [
      client.call('connect', { token: await token({ sub: 'eager' }) }),
      client.call('subscribe', { channel: 'public:pipelined' }),
      client.call('publish', { channel: 'public:pipelined', data: 'first' }),
      client.call('history', { channel: 'public:pipelined' }),
    ];
    const [connected, subscribed, published, history] = await Promise.all(calls);
    assert.equal(connected?.result?.userId, 'eager');
    assert.equal(subscribed?.result?.offset, 0);
    assert.equal(published?.result?.offset, 1);
    assert.deepEqual(
      history?.result?.publications.map((p: any) => p.data),
      ['first'],
    );
    await until(() => client.publications('public:pipelined').length === 1, 'the publication');
    client.close();
  });

  it('sets up an anonymous client that joins a busy channel in one step: answers in order, position, presence, live pushes', async () => {
    // The first subscriber makes the channel known to the node; the second one's setup then needs
    // nothing from the embedded broker that it has to wait for (the path every later connection takes).
    const channel = 'public:busy';
    const first = await WsTestClient.connect(hub.wsUrl);
    const { epoch } = await first.ok('subscribe', { channel });
    await publish(hub, channel, 'one');
    await publish(hub, channel, 'two');
    const client = new WsTestClient(hub.wsUrl);
    await client.opened;
    client.socket.send('{"id":1,"method":"connect","params":{}}');
    client.socket.send(`{"id":2,"method":"subscribe","params":{"channel":"${channel}"}}`);
    await until(() => client.replies.has(2), 'the subscribe answer');
    assert.deepEqual([...client.replies.keys()], [1, 2], 'connect is answered first');
    const clientId = client.replies.get(1)?.result.clientId;
    assert.equal(typeof clientId, 'string');
    assert.deepEqual(client.replies.get(2)?.result, { offset: 2, epoch });
    const presence = await api(hub, 'GET', `/api/channels/${channel}/presence`);
    assert.ok(
      presence.body.clients.some((c: { clientId: string }) => c.clientId === clientId),
      'the new client is present',
    );
    await publish(hub, channel, 'three');
    await until(() => client.publications(channel).length === 1, 'the live publication');
    assert.deepEqual(
      client.publications(channel).map((p) => [p.offset, p.data]),
      [[3, 'three']],
    );
    client.close();
    first.close();
  });

  it('closes 4002 for commands pipelined behind a connect that failed', async () => {
    const client = new WsTestClient(hub.wsUrl);
    await client.opened;
    const refused = client.call('connect', { token: 42 });
    client.socket.send(JSON.stringify({ id: 2, method: 'subscribe', params: { channel: 'public:x' } }));
    assert.equal((await refused).error?.code, 'bad_request');
    assert.equal(await client.closed, 4002);
    assert.equal(client.replies.has(2), false);
    assert.equal(client.pushes.at(-1)?.push, 'disconnect');
  });

  it('refuses a second connect', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    const again = await client.call('connect', { token: await token() });
    assert.equal(again.error?.code, 'bad_request');
    assert.deepEqual(await client.ok('ping'), {});
    client.close();
  });

  it('closes 4002 when the first command is not connect, after a disconnect push', async () => {
    const client = new WsTestClient(hub.wsUrl);
    await client.opened;
    client.socket.send(JSON.stringify({ id: 1, method: 'subscribe', params: { channel: 'public:x' } }));
    assert.equal(await client.closed, 4002);
    assert.deepEqual(
      { push: client.pushes.at(-1)?.push, code: client.pushes.at(-1)?.code },
      { push: 'disconnect', code: 4002 },
    );
    assert.equal(client.pushes.at(-1)?.reconnect, false);
    assert.equal(client.replies.size, 0);
  });
});

describe('WebSocket without anonymous channels', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('closes 4001 (after a disconnect push) when no token comes', async () => {
    const client = new WsTestClient(hub.wsUrl);
    await client.opened;
    client.socket.send(JSON.stringify({ id: 1, method: 'connect', params: {} }));
    assert.equal(await client.closed, 4001);
    assert.equal(client.pushes.at(-1)?.push, 'disconnect');
    assert.equal(client.pushes.at(-1)?.code, 4001);
  });
});

describe('WebSocket methods', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('subscribe answers the latest stored offset, and without since has no recovered or publications', async () => {
    for (let i = 1; i <= 3; i++) await publish(hub, 'm:latest', i);
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    const sub = await client.ok('subscribe', { channel: 'm:latest' });
    assert.equal(sub.offset, 3);
    assert.deepEqual(Object.keys(sub).sort(), ['epoch', 'offset']);
    await publish(hub, 'm:latest', 4);
    await until(() => client.publications('m:latest').length === 1, 'the live publication');
    assert.equal(client.publications('m:latest')[0].offset, 4);
    client.close();
  });

  it('subscribe with since answers the missed publications, then live pushes follow after the answer', async () => {
    const first = await publish(hub, 'm:since', 'a');
    await publish(hub, 'm:since', 'b');
    await publish(hub, 'm:since', 'c');
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    const order: string[] = [];
    client.socket.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      order.push(m.id !== undefined ? 'answer' : `pub${m.pub?.offset}`);
    });
    const subscribing = client.ok('subscribe', { channel: 'm:since', since: first });
    const live = publish(hub, 'm:since', 'd');
    const sub = await subscribing;
    await live;
    assert.equal(sub.recovered, true);
    assert.equal(sub.epoch, first.epoch);
    const replayed = sub.publications.map((p: any) => p.offset);
    await until(() => client.publications('m:since').length + replayed.length >= 3, 'the live publication');
    const all = [...replayed, ...client.publications('m:since').map((p: any) => p.offset)];
    assert.deepEqual(all, [2, 3, 4]);
    assert.equal(order[0], 'answer');
    client.close();
  });

  it('refuses a second subscription to the same channel, and bad since positions', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    await client.ok('subscribe', { channel: 'm:twice' });
    assert.equal((await client.call('subscribe', { channel: 'm:twice' })).error?.code, 'already_subscribed');
    for (const since of [{ offset: -1, epoch: 'e' }, { offset: 1 }, 'x', { offset: 1, epoch: 'a~b' }]) {
      assert.equal((await client.call('subscribe', { channel: 'm:bad', since })).error?.code, 'bad_request');
    }
    assert.equal((await client.call('subscribe', { channel: 'm:jl', joinLeave: 'yes' })).error?.code, 'bad_request');
    client.close();
  });

  it('unsubscribe answers {} and stops deliveries', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    await client.ok('subscribe', { channel: 'm:unsub' });
    await client.ok('subscribe', { channel: 'm:marker' });
    assert.deepEqual(await client.ok('unsubscribe', { channel: 'm:unsub' }), {});
    await publish(hub, 'm:unsub', 'not for you');
    await publish(hub, 'm:marker', 'marker');
    await until(() => client.publications('m:marker').length === 1, 'the marker');
    assert.equal(client.publications('m:unsub').length, 0);
    assert.deepEqual(await client.ok('unsubscribe', { channel: 'm:never' }), {});
    assert.equal((await client.call('unsubscribe', { channel: 'bad channel' })).error?.code, 'bad_channel');
    client.close();
  });

  it('publish answers offset and epoch (ephemeral: {}), within the token publish patterns', async () => {
    const client = await WsTestClient.connect(
      hub.wsUrl,
      await token({ channels: ['*'], publish: ['chat:*'], info: { name: 'Alice' } }),
    );
    await client.ok('subscribe', { channel: 'chat:1' });
    const ack = await client.ok('publish', { channel: 'chat:1', data: { text: 'hi' }, event: 'message' });
    assert.deepEqual(Object.keys(ack).sort(), ['epoch', 'offset']);
    assert.equal(ack.offset, 1);
    assert.deepEqual(await client.ok('publish', { channel: 'chat:1', data: 'typing', ephemeral: true }), {});
    await until(() => client.publications('chat:1').length === 2, 'both publications');
    const [stored, ephemeral] = client.publications('chat:1');
    assert.deepEqual(
      { offset: stored.offset, epoch: stored.epoch, data: stored.data, event: stored.event, info: stored.info },
      { offset: 1, epoch: ack.epoch, data: { text: 'hi' }, event: 'message', info: { name: 'Alice' } },
    );
    assert.equal('offset' in ephemeral || 'epoch' in ephemeral, false);
    assert.equal((await client.call('publish', { channel: 'orders:1', data: 1 })).error?.code, 'forbidden');
    assert.equal(
      (await client.call('publish', { channel: 'chat:1', data: 1, event: 'herald.x' })).error?.code,
      'reserved_event',
    );
    assert.equal((await client.call('publish', { channel: 'chat:1' })).error?.code, 'bad_request');
    assert.equal((await client.call('publish', { channel: 'chat 1', data: 1 })).error?.code, 'bad_channel');
    client.close();
  });

  it('presence lists clientId, userId and info of the subscribers', async () => {
    const alice = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'alice', info: { color: 'red' } }));
    const bob = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'bob' }));
    await alice.ok('subscribe', { channel: 'm:room' });
    await bob.ok('subscribe', { channel: 'm:room' });
    const { clients } = await bob.ok('presence', { channel: 'm:room' });
    const byUser = Object.fromEntries(clients.map((c: any) => [c.userId, c]));
    assert.deepEqual(Object.keys(byUser).sort(), ['alice', 'bob']);
    assert.deepEqual(byUser.alice, {
      clientId: alice.replies.get(1)?.result.clientId,
      userId: 'alice',
      info: { color: 'red' },
    });
    assert.equal('info' in byUser.bob, false);
    const outsider = await WsTestClient.connect(hub.wsUrl, await token({ channels: ['other'] }));
    assert.equal((await outsider.call('presence', { channel: 'm:room' })).error?.code, 'forbidden');
    bob.close();
    await bob.closed;
    let remaining: any[] = [];
    for (let i = 0; i < 100; i++) {
      remaining = (await alice.ok('presence', { channel: 'm:room' })).clients;
      if (remaining.length === 1) break;
      await sleep(20);
    }
    assert.deepEqual(
      remaining.map((c: any) => c.userId),
      ['alice'],
    );
    alice.close();
    outsider.close();
  });

  it('history answers publications oldest first with offset and epoch, by limit and since', async () => {
    for (let i = 1; i <= 6; i++) await publish(hub, 'm:history', i);
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    const latest = await client.ok('history', { channel: 'm:history', limit: 2 });
    assert.deepEqual(
      latest.publications.map((p: any) => p.data),
      [5, 6],
    );
    assert.equal(latest.offset, 6);
    const since = await client.ok('history', { channel: 'm:history', since: { offset: 3, epoch: latest.epoch } });
    assert.deepEqual(
      since.publications.map((p: any) => p.offset),
      [4, 5, 6],
    );
    assert.equal(since.recovered, true);
    assert.equal((await client.call('history', { channel: 'm:history', limit: 'x' })).error?.code, 'bad_request');
    assert.equal((await client.call('history', { channel: 'm:history', limit: -1 })).error?.code, 'bad_request');
    client.close();
  });

  it('refresh answers expiresIn, refuses bad tokens and other users, and ends subscriptions no longer permitted', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'carol', channels: ['a:*', 'b:*'] }));
    await client.ok('subscribe', { channel: 'a:1' });
    await client.ok('subscribe', { channel: 'b:1' });
    const refreshed = await client.ok('refresh', {
      token: await token({ sub: 'carol', channels: ['a:*'], expiresIn: 600 }),
    });
    assert.ok(refreshed.expiresIn > 590 && refreshed.expiresIn <= 600);
    await until(() => client.pushes.some((p) => p.push === 'unsub'), 'the unsub push');
    assert.deepEqual(
      client.pushes.find((p) => p.push === 'unsub'),
      {
        push: 'unsub',
        channel: 'b:1',
        code: 2403,
        reason: 'no longer permitted',
      },
    );
    await publish(hub, 'b:1', 'gone');
    await publish(hub, 'a:1', 'still here');
    await until(() => client.publications('a:1').length === 1, 'the a:1 publication');
    assert.equal(client.publications('b:1').length, 0);
    assert.equal((await client.call('refresh', { token: await token({ sub: 'mallory' }) })).error?.code, 'forbidden');
    assert.equal((await client.call('refresh', { token: 'garbage' })).error?.code, 'unauthorized');
    assert.equal((await client.call('refresh', {})).error?.code, 'bad_request');
    assert.deepEqual(await client.ok('ping'), {});
    client.close();
  });

  it('sends join and leave only to subscribers that asked with joinLeave, never about themselves', async () => {
    const watcher = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'watcher' }));
    const quiet = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'quiet' }));
    await watcher.ok('subscribe', { channel: 'm:jl', joinLeave: true });
    await quiet.ok('subscribe', { channel: 'm:jl' });
    const joiner = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'joiner', info: { n: 1 } }));
    const joinerId = joiner.replies.get(1)?.result.clientId;
    await joiner.ok('subscribe', { channel: 'm:jl' });
    await until(() => watcher.pushes.some((p) => p.push === 'join' && p.client.userId === 'joiner'), 'the join');
    assert.deepEqual(
      watcher.pushes.find((p) => p.push === 'join' && p.client.userId === 'joiner'),
      { push: 'join', channel: 'm:jl', client: { clientId: joinerId, userId: 'joiner', info: { n: 1 } } },
    );
    await joiner.ok('unsubscribe', { channel: 'm:jl' });
    await until(() => watcher.pushes.some((p) => p.push === 'leave'), 'the leave');
    assert.deepEqual(
      watcher.pushes.find((p) => p.push === 'leave'),
      {
        push: 'leave',
        channel: 'm:jl',
        client: { clientId: joinerId, userId: 'joiner', info: { n: 1 } },
      },
    );
    await publish(hub, 'm:jl', 'marker');
    await until(() => quiet.publications('m:jl').length === 1, 'the marker');
    assert.equal(quiet.pushes.filter((p) => p.push === 'join' || p.push === 'leave').length, 0);
    assert.equal(watcher.pushes.filter((p) => p.push === 'join' && p.client.userId === 'watcher').length, 0);
    for (const c of [watcher, quiet, joiner]) c.close();
  });

  it('answers every command exactly once, pipelined', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    const ids: number[] = [];
    client.socket.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      if (m.id !== undefined) ids.push(m.id);
    });
    const calls = [];
    for (let i = 0; i < 30; i++) {
      const method = ['ping', 'subscribe', 'history', 'publish', 'presence'][i % 5] as string;
      calls.push(client.call(method, { channel: `m:pipe${i % 3}`, data: i }));
    }
    const replies = await Promise.all(calls);
    await client.ok('ping');
    assert.equal(replies.length, 30);
    assert.deepEqual(
      ids.slice(0, 30).sort((a, b) => a - b),
      Array.from({ length: 30 }, (_, i) => i + 2),
    );
    assert.equal(new Set(ids).size, ids.length);
    client.close();
  });

  it('ends a session with close 1000 after a disconnect push when the application disconnects the user', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'dave' }));
    await hub.server.hub.disconnectUser('dave', { code: 1000, reason: 'signed out' });
    assert.equal(await client.closed, 1000);
    assert.deepEqual(client.pushes.at(-1), { push: 'disconnect', code: 1000, reason: 'signed out', reconnect: false });
  });

  it("writes a busy turn's publications and the disconnect push before the close frame", async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'erin' }));
    await client.ok('subscribe', { channel: 'orders:erin' });
    const publishTurn = (): Promise<unknown>[] =>
      Array.from({ length: 30 }, (_, i) => hub.server.hub.publish({ channel: 'orders:erin', data: { i } }));
    // A turn that batches makes the next one hold every frame for its end (turn-batch.ts)...
    await Promise.all(publishTurn());
    // ...where the disconnect comes: what was held leaves before `ws`'s close frame.
    const last = publishTurn();
    await hub.server.hub.disconnectUser('erin', { code: 1000, reason: 'signed out' });
    await Promise.all(last);
    assert.equal(await client.closed, 1000);
    const offsets = client.publications('orders:erin').map((p) => p.offset);
    assert.deepEqual(
      offsets,
      Array.from({ length: 60 }, (_, i) => i + 1),
      'every publication, in order',
    );
    assert.deepEqual(client.pushes.at(-1), { push: 'disconnect', code: 1000, reason: 'signed out', reconnect: false });
  });

  it('answers a client close with 1000', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    client.socket.close(1000);
    assert.equal(await client.closed, 1000);
  });
});

describe('WebSocket close codes', () => {
  it('closes 4006 when no connect comes in time', async () => {
    const hub = await startHub({ connectTimeoutMs: 300 });
    try {
      const client = new WsTestClient(hub.wsUrl);
      await client.opened;
      assert.equal(await client.closed, 4006);
      assert.equal(client.pushes.at(-1)?.push, 'disconnect');
      assert.equal(client.pushes.at(-1)?.code, 4006);
      assert.equal(client.pushes.at(-1)?.reconnect, true);
      // A connected client is not affected by the deadline.
      const connected = await WsTestClient.connect(hub.wsUrl, await token());
      await sleep(1500);
      assert.deepEqual(await connected.ok('ping'), {});
      connected.close();
    } finally {
      await hub.close();
    }
  });

  it('lets a client connect late within the deadline, after sweeps saw it waiting, and keeps it', async () => {
    const hub = await startHub({ connectTimeoutMs: 2_000 });
    try {
      const late = new WsTestClient(hub.wsUrl);
      await late.opened;
      // At least one deadline sweep (every second) finds it still waiting for `connect`.
      await sleep(1_200);
      await late.ok('connect', { token: await token() });
      // Past the deadline and two more sweeps: a connected client is never ended by it.
      await sleep(2_200);
      assert.deepEqual(await late.ok('ping'), {});
      assert.equal(late.closeCode, undefined);
      late.close();
    } finally {
      await hub.close();
    }
  });

  it('closes 4005 for a client that sends commands faster than allowed', async () => {
    const hub = await startHub({ commandRate: { perSecond: 1, burst: 5 } });
    try {
      const client = await WsTestClient.connect(hub.wsUrl, await token());
      for (let i = 0; i < 20; i++) client.socket.send(JSON.stringify({ id: 100 + i, method: 'ping' }));
      assert.equal(await client.closed, 4005);
      assert.equal(client.pushes.at(-1)?.push, 'disconnect');
      assert.equal(client.pushes.at(-1)?.code, 4005);
      assert.equal(client.pushes.at(-1)?.reconnect, true);
    } finally {
      await hub.close();
    }
  });

  it('closes 1001 with a disconnect push (reconnect: true) when the hub shuts down', async () => {
    const hub = await startHub();
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    await hub.close();
    assert.equal(await client.closed, 1001);
    assert.equal(client.pushes.at(-1)?.push, 'disconnect');
    assert.equal(client.pushes.at(-1)?.code, 1001);
    assert.equal(client.pushes.at(-1)?.reconnect, true);
  });
});
