/**
 * Pusher protocol 7 over WebSocket with the real pusher-js and the real `pusher` server SDK, on
 * one hub: every channel type, client events, sign-in, send-to-user, terminate, app isolation,
 * and Herald's own clients on the same channels.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import PusherServer from 'pusher';
import nacl from 'tweetnacl';
import WebSocket from 'ws';
import { sleep, token, until } from '../../../test/support/hub.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';
import { APP, OTHER_APP, type TestClient, serverSdk, sharedPusherHub, type ClientOptions } from './support.ts';

describe('Pusher over WebSocket (pusher-js 8, pusher 5)', () => {
  const shared = sharedPusherHub();
  const client = (options?: ClientOptions): TestClient => shared.client(options);

  it('connects with connection_established: a socket_id Pusher SDKs accept, and the activity timeout', async () => {
    const c = client();
    await c.connected();
    assert.match(c.socketId, /^\d+\.\d+$/);
    // The server SDK refuses socket ids it would not sign.
    assert.ok(serverSdk(shared.hub.port).authorizeChannel(c.socketId, 'private-x').auth.startsWith(`${APP.key}:`));
  });

  it('public channel: an event triggered with the server SDK reaches the subscriber, data parsed', async () => {
    const c = client();
    await c.subscribe('orders');
    await serverSdk(shared.hub.port).trigger('orders', 'order-shipped', { id: 42, items: ['a'] });
    const [seen] = await c.waitFor('orders', 'order-shipped');
    assert.deepEqual(seen?.data, { id: 42, items: ['a'] });
  });

  it('one trigger to several channels, and batch_events, reach each channel once', async () => {
    const c = client();
    await Promise.all([c.subscribe('multi-a'), c.subscribe('multi-b')]);
    const sdk = serverSdk(shared.hub.port);
    await sdk.trigger(['multi-a', 'multi-b'], 'hello', 'plain text');
    await sdk.triggerBatch([
      { channel: 'multi-a', name: 'batched', data: { n: 1 } },
      { channel: 'multi-b', name: 'batched', data: { n: 2 } },
    ]);
    await c.waitFor('multi-b', 'batched');
    await c.waitFor('multi-a', 'batched');
    assert.deepEqual(
      c.events('multi-a', 'hello').map((s) => s.data),
      ['plain text'],
    );
    assert.deepEqual(c.events('multi-b', 'batched')[0]?.data, { n: 2 });
  });

  it('private channel: a good signature subscribes, a bad one gets pusher:subscription_error', async () => {
    const good = client();
    await good.subscribe('private-account.7');
    await serverSdk(shared.hub.port).trigger('private-account.7', 'balance', { amount: 5 });
    await good.waitFor('private-account.7', 'balance');
    const bad = client({ badAuth: true });
    await bad.connected();
    await assert.rejects(bad.subscribe('private-account.7'), (error: any) => {
      assert.equal(error.type, 'AuthError');
      assert.equal(error.status, 401);
      return true;
    });
  });

  it('presence: members on subscribe, member_added / member_removed once per user, users and user_count over the API', async () => {
    const alice = client({ member: { user_id: 'alice', user_info: { name: 'Alice' } } });
    const joined = await alice.subscribe('presence-room');
    assert.equal(joined.count, 1);
    assert.deepEqual(joined.me, { id: 'alice', info: { name: 'Alice' } });
    const bob = client({ member: { user_id: 'bob', user_info: { name: 'Bob' } } });
    const bobView = await bob.subscribe('presence-room');
    assert.equal(bobView.count, 2);
    assert.deepEqual(bobView.members, { alice: { name: 'Alice' }, bob: { name: 'Bob' } });
    const [added] = await alice.waitFor('presence-room', 'pusher:member_added');
    assert.deepEqual(added?.data, { id: 'bob', info: { name: 'Bob' } });
    // Bob's second connection adds no member; closing one of two removes none.
    const bob2 = client({ member: { user_id: 'bob', user_info: { name: 'Bob' } } });
    await bob2.subscribe('presence-room');
    const sdk = serverSdk(shared.hub.port);
    const users = await (await sdk.get({ path: '/channels/presence-room/users' })).json();
    assert.deepEqual(users.users.map((u: { id: string }) => u.id).sort(), ['alice', 'bob']);
    const info = await (
      await sdk.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } })
    ).json();
    assert.deepEqual(info, { occupied: true, subscription_count: 3, user_count: 2 });
    bob2.close();
    await until(() => bob.state === 'connected', 'bob');
    await sleep(300);
    assert.equal(alice.events('presence-room', 'pusher:member_added').length, 1);
    assert.equal(alice.events('presence-room', 'pusher:member_removed').length, 0);
    bob.close();
    const [removed] = await alice.waitFor('presence-room', 'pusher:member_removed');
    assert.deepEqual(removed?.data, { id: 'bob', info: { name: 'Bob' } });
    const listed = await (
      await sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })
    ).json();
    assert.deepEqual(listed.channels['presence-room'], { user_count: 1 });
  });

  it('client events on private and presence channels reach the others with user_id, never the sender', async () => {
    const alice = client({ member: { user_id: 'alice' } });
    const bob = client({ member: { user_id: 'bob' } });
    await Promise.all([alice.subscribe('presence-chat'), bob.subscribe('presence-chat')]);
    const withMetadata: unknown[] = [];
    bob.pusher
      .channel('presence-chat')
      .bind('client-typing', (_data: unknown, metadata: unknown) => withMetadata.push(metadata));
    alice.pusher.channel('presence-chat').trigger('client-typing', { typing: true });
    const [typing] = await bob.waitFor('presence-chat', 'client-typing');
    assert.deepEqual(typing?.data, { typing: true });
    assert.deepEqual(withMetadata, [{ user_id: 'alice' }]);
    await Promise.all([alice.subscribe('private-pair'), bob.subscribe('private-pair')]);
    bob.pusher.channel('private-pair').trigger('client-ping', 'x');
    await alice.waitFor('private-pair', 'client-ping');
    await sleep(200);
    assert.equal(
      alice.events('presence-chat', 'client-typing').length,
      0,
      'the sender does not get its own client event',
    );
    assert.equal(bob.events('private-pair', 'client-ping').length, 0);
  });

  it('client events: refused on public channels and past 10 per second, with pusher:error; the connection goes on', async () => {
    const errors: any[] = [];
    const sender = client();
    sender.pusher.connection.bind('message', (m: any) => m.event === 'pusher:error' && errors.push(m.data));
    const listener = client();
    await Promise.all([
      sender.subscribe('private-flood'),
      listener.subscribe('private-flood'),
      sender.subscribe('public-x'),
    ]);
    (sender.pusher as any).send_event('client-nope', {}, 'public-x');
    await until(() => errors.length === 1, 'the public-channel refusal');
    assert.equal(errors[0].code, 4009);
    assert.match(errors[0].message, /only allowed on private and presence channels/);
    for (let i = 0; i < 30; i++) sender.pusher.channel('private-flood').trigger('client-burst', { i });
    await until(() => errors.some((e) => e.code === 4301), 'a 4301 refusal');
    const delivered = await listener.waitFor('private-flood', 'client-burst', 10);
    assert.ok(delivered.length < 30, `${delivered.length} of 30 got through`);
    assert.equal(sender.state, 'connected');
  });

  it('cache channels: a new subscriber gets the last event; an empty one gets pusher:cache_miss', async () => {
    const sdk = serverSdk(shared.hub.port);
    await sdk.trigger('cache-price', 'tick', { v: 1 });
    await sdk.trigger('cache-price', 'tick', { v: 2 });
    const c = client();
    await c.subscribe('cache-price');
    const [tick] = await c.waitFor('cache-price', 'tick');
    assert.deepEqual(tick?.data, { v: 2 });
    await sleep(100);
    assert.equal(c.events('cache-price', 'tick').length, 1);
    const misses: string[] = [];
    c.pusher.connection.bind('message', (m: any) => m.event === 'pusher:cache_miss' && misses.push(m.channel));
    await c.subscribe('cache-empty');
    await until(() => misses.length === 1, 'pusher:cache_miss');
    assert.deepEqual(misses, ['cache-empty']);
    await sdk.trigger('cache-empty', 'tick', { v: 3 });
    await c.waitFor('cache-empty', 'tick');
  });

  it('private-encrypted channels relay the ciphertext untouched: it decrypts with the shared secret the SDK gave', async () => {
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    const sdk = new PusherServer({
      appId: APP.id,
      key: APP.key,
      secret: APP.secret,
      host: '127.0.0.1',
      port: String(shared.hub.port),
      useTLS: false,
      encryptionMasterKeyBase64: masterKey,
    });
    const c = client();
    await c.connected();
    const auth = sdk.authorizeChannel(c.socketId, 'private-encrypted-vault') as { auth: string; shared_secret: string };
    const raw = new WebSocket(`ws://127.0.0.1:${shared.hub.port}/app/${APP.key}?protocol=7`);
    const messages: any[] = [];
    raw.on('message', (data) => messages.push(JSON.parse(data.toString())));
    await until(() => messages.length === 1, 'connection_established');
    const socketId = JSON.parse(messages[0].data).socket_id;
    const signed = sdk.authorizeChannel(socketId, 'private-encrypted-vault') as { auth: string; shared_secret: string };
    raw.send(
      JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-encrypted-vault', auth: signed.auth } }),
    );
    await until(() => messages.some((m) => m.event === 'pusher_internal:subscription_succeeded'), 'subscribed');
    await sdk.trigger('private-encrypted-vault', 'secret', { code: 'xyzzy' });
    await until(() => messages.some((m) => m.event === 'secret'), 'the encrypted event');
    const payload = JSON.parse(messages.find((m) => m.event === 'secret').data);
    const opened = nacl.secretbox.open(
      Buffer.from(payload.ciphertext, 'base64'),
      Buffer.from(payload.nonce, 'base64'),
      Buffer.from(signed.shared_secret, 'base64'),
    );
    assert.ok(opened !== null, 'the ciphertext decrypts: it was relayed byte for byte');
    assert.deepEqual(JSON.parse(Buffer.from(opened).toString('utf8')), { code: 'xyzzy' });
    assert.ok(auth.shared_secret.length > 0);
    raw.close();
  });

  it('signin: send-to-user reaches every connection of the user; terminate_connections ends them, not other apps', async () => {
    const a1 = client({ user: { id: 'carol' } });
    const a2 = client({ user: { id: 'carol' } });
    const other = client({ app: OTHER_APP, user: { id: 'carol' } });
    const got: unknown[] = [];
    for (const c of [a1, a2]) {
      c.pusher.user.bind('notice', (data: unknown) => got.push(data));
      c.pusher.signin();
    }
    other.pusher.signin();
    await Promise.all([a1, a2, other].map((c) => c.connected()));
    await Promise.all([a1, a2, other].map((c) => (c.pusher.user as any).signinDonePromise));
    const sdk = serverSdk(shared.hub.port);
    // The user channel subscription follows signin_success; resend until both connections have it.
    await until(
      () => [a1, a2].every((c) => (c.pusher.user as any).serverToUserChannel?.subscribed === true),
      'the #server-to-user- subscriptions',
    );
    await sdk.sendToUser('carol', 'notice', { text: 'hi' });
    await until(() => got.length === 2, 'the event on both connections');
    await sdk.terminateUserConnections('carol');
    await until(() => a1.state !== 'connected' && a2.state !== 'connected', 'both connections to end');
    await sleep(500);
    assert.equal(other.state, 'connected', 'the same user id in another app is another user');
    assert.notEqual(a1.state, 'connected', 'pusher-js does not reconnect after 4009');
    assert.notEqual(a2.state, 'connected');
  });

  it('a user may subscribe to its own #server-to-user- channel only', async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${shared.hub.port}/app/${APP.key}?protocol=7`);
    const messages: any[] = [];
    raw.on('message', (data) => messages.push(JSON.parse(data.toString())));
    await until(() => messages.length === 1, 'connection_established');
    raw.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: '#server-to-user-dave' } }));
    await until(() => messages.length === 2, 'the refusal');
    assert.equal(messages[1].event, 'pusher:subscription_error');
    assert.equal(messages[1].channel, '#server-to-user-dave');
    raw.close();
  });

  it('apps are isolated: the same channel name in another app is another channel', async () => {
    const mine = client();
    const theirs = client({ app: OTHER_APP });
    await Promise.all([mine.subscribe('news'), theirs.subscribe('news')]);
    await serverSdk(shared.hub.port, OTHER_APP).trigger('news', 'story', { app: 'other' });
    await theirs.waitFor('news', 'story');
    await sleep(200);
    assert.equal(mine.events('news', 'story').length, 0);
  });

  it("Herald's own clients follow an app's channels as pusher:{appId}:{name}, both ways", async () => {
    const herald = await WsTestClient.connect(
      `ws://127.0.0.1:${shared.hub.port}/ws`,
      await token({ channels: ['pusher:1001:*'] }),
    );
    await herald.call('subscribe', { channel: 'pusher:1001:private-feed' });
    const c = client();
    await c.subscribe('private-feed');
    await serverSdk(shared.hub.port).trigger('private-feed', 'item', { n: 1 });
    await until(() => herald.pushes.some((p) => p.push === 'pub'), 'the Herald client to get the event');
    const pub = herald.pushes.find((p) => p.push === 'pub');
    assert.equal(pub.pub.event, 'item');
    assert.deepEqual(pub.pub.data, { n: 1 });
    const published = await herald.call('publish', {
      channel: 'pusher:1001:private-feed',
      event: 'from-herald',
      data: { ok: true },
    });
    assert.ok(published.result);
    const [seen] = await c.waitFor('private-feed', 'from-herald');
    assert.deepEqual(seen?.data, { ok: true });
    herald.socket.close();
  });

  it('refuses bad handshakes with Pusher close codes: unknown key 4001, no protocol 4008, unsupported 4007', async () => {
    const closeCode = (path: string): Promise<number> =>
      new Promise((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${shared.hub.port}${path}`);
        ws.on('error', () => undefined);
        ws.on('close', (code) => resolve(code));
      });
    assert.equal(await closeCode('/app/no-such-key?protocol=7'), 4001);
    assert.equal(await closeCode(`/app/${APP.key}`), 4008);
    assert.equal(await closeCode(`/app/${APP.key}?protocol=4`), 4007);
    assert.equal(await closeCode(`/app/${APP.key}?protocol=seven`), 4006);
  });

  it('a message that is not JSON ends that connection only, with a Pusher close code', async () => {
    const bystander = client();
    await bystander.subscribe('calm');
    const raw = new WebSocket(`ws://127.0.0.1:${shared.hub.port}/app/${APP.key}?protocol=7`);
    raw.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => raw.on('close', (code) => resolve(code)));
    raw.on('open', () => raw.send('{not json'));
    assert.equal(await closed, 4009);
    await serverSdk(shared.hub.port).trigger('calm', 'still', {});
    await bystander.waitFor('calm', 'still');
  });

  it('pusher:ping is answered with pusher:pong', async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${shared.hub.port}/app/${APP.key}?protocol=7`);
    const events: string[] = [];
    raw.on('message', (data) => events.push(JSON.parse(data.toString()).event));
    await until(() => events.length === 1, 'connection_established');
    raw.send(JSON.stringify({ event: 'pusher:ping', data: {} }));
    await until(() => events.includes('pusher:pong'), 'pusher:pong');
    raw.close();
  });

  it('the HTTP API refuses a bad signature (401) and an unknown app (404)', async () => {
    const wrong = serverSdk(shared.hub.port, { ...APP, secret: 'a-wrong-secret-123' });
    await assert.rejects(wrong.trigger('orders', 'x', {}), (error: any) => error.status === 401);
    const unknown = serverSdk(shared.hub.port, { ...APP, id: '999' });
    await assert.rejects(unknown.trigger('orders', 'x', {}), (error: any) => error.status === 404);
  });
});
