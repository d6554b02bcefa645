/**
 * pusher-js's HTTP fallbacks (`xhr_streaming`, `xhr_polling`) in Node, on one hub and behind a
 * proxy that refuses WebSocket upgrades (pusher-js then falls back by itself): subscribe,
 * private and presence auth, events from the server SDK, client events, and the HTTP frames
 * themselves (a session's `o` comes once; a closed session answers its close frame).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpProxy } from '../../../test/support/http-proxy.ts';
import { APP, type TestClient, serverSdk, sharedPusherHub, startPusherHub, type ClientOptions } from './support.ts';

describe('pusher-js HTTP fallbacks', () => {
  const shared = sharedPusherHub();
  const client = (options?: ClientOptions): TestClient => shared.client(options);

  for (const transport of ['xhr_streaming', 'xhr_polling'] as const) {
    it(`${transport}: connects, subscribes (public, private, presence) and gets events and client events`, async () => {
      const alice = client({ transports: [transport], member: { user_id: 'alice' } });
      await alice.connected();
      assert.equal((alice.pusher.connection as any).connection?.transport?.name ?? transport, transport);
      await alice.subscribe(`news-${transport}`);
      await alice.subscribe(`private-box-${transport}`);
      const presence = await alice.subscribe(`presence-room-${transport}`);
      assert.equal(presence.count, 1);
      const bob = client({ member: { user_id: 'bob' } });
      await bob.subscribe(`presence-room-${transport}`);
      await alice.waitFor(`presence-room-${transport}`, 'pusher:member_added');
      const sdk = serverSdk(shared.hub.port);
      await sdk.trigger(`news-${transport}`, 'story', { n: 1 });
      await sdk.trigger(`private-box-${transport}`, 'mail', { n: 2 });
      assert.deepEqual((await alice.waitFor(`news-${transport}`, 'story'))[0]?.data, { n: 1 });
      assert.deepEqual((await alice.waitFor(`private-box-${transport}`, 'mail'))[0]?.data, { n: 2 });
      // From the fallback client to the WebSocket one, and back.
      alice.pusher.channel(`presence-room-${transport}`).trigger('client-hello', { from: 'alice' });
      await bob.waitFor(`presence-room-${transport}`, 'client-hello');
      bob.pusher.channel(`presence-room-${transport}`).trigger('client-hello', { from: 'bob' });
      const [hello] = await alice.waitFor(`presence-room-${transport}`, 'client-hello');
      assert.deepEqual(hello?.data, { from: 'bob' });
      // Many events in a row arrive in order.
      for (let i = 0; i < 20; i++) await sdk.trigger(`news-${transport}`, 'seq', { i });
      const seq = await alice.waitFor(`news-${transport}`, 'seq', 20);
      assert.deepEqual(
        seq.map((s) => s.data.i),
        Array.from({ length: 20 }, (_, i) => i),
      );
    });
  }

  it('behind a proxy that refuses WebSocket, pusher-js with its default transports falls back and works', async () => {
    const proxy = new HttpProxy(shared.hub.port, { refuseUpgrades: true });
    await proxy.listen();
    try {
      const c = shared.client({ transports: ['ws', 'xhr_streaming', 'xhr_polling'] }, proxy.port);
      await c.subscribe('through-proxy');
      assert.ok(proxy.refusedUpgrades >= 1, 'pusher-js tried WebSocket first');
      await serverSdk(shared.hub.port).trigger('through-proxy', 'ok', { fine: true });
      await c.waitFor('through-proxy', 'ok');
    } finally {
      await proxy.close();
    }
  });

  it('speaks the frames pusher-js expects: o once, then a[...] messages; a terminated session answers c[...]', async () => {
    const base = `${shared.hub.url}/pusher/app/${APP.key}/123/abcdefgh`;
    const post = async (kind: string, body?: string): Promise<{ status: number; text: string }> => {
      const response = await fetch(`${base}/${kind}?protocol=7&client=js&version=8.6.0`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body }),
      });
      return { status: response.status, text: await response.text() };
    };
    assert.deepEqual(await post('xhr'), { status: 200, text: 'o\n' });
    const established = await post('xhr');
    assert.match(established.text, /^a\[".*pusher:connection_established.*"\]\n$/);
    const message = JSON.parse(JSON.parse(established.text.slice(1))[0]);
    const socketId = JSON.parse(message.data).socket_id;
    assert.match(socketId, /^\d+\.\d+$/);
    const send = await post(
      'xhr_send',
      JSON.stringify([JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'raw' } })]),
    );
    assert.equal(send.status, 204);
    const subscribed = await post('xhr');
    assert.match(subscribed.text, /pusher_internal:subscription_succeeded/);
    assert.equal((await post('xhr_send', 'not json')).status, 400);
    // A message that breaks the protocol closes the session; the next receive gets the close frame.
    await post('xhr_send', JSON.stringify(['{broken']));
    assert.match((await post('xhr')).text, /^c\[4009,/);
    assert.equal((await post('xhr_send', '[]')).status, 404);
  });

  it('refuses an unknown app key with close frame 4001', async () => {
    const response = await fetch(`${shared.hub.url}/pusher/app/nope/1/abc/xhr?protocol=7`, { method: 'POST' });
    assert.match(await response.text(), /^c\[4001,/);
  });

  it('a fallback session counts as one connection for admission control (429 past the cap)', async () => {
    const capped = await startPusherHub({ maxConnectionsPerIp: 1 });
    try {
      const open = (session: string) =>
        fetch(`${capped.url}/pusher/app/${APP.key}/1/${session}/xhr?protocol=7`, { method: 'POST' });
      const first = await open('first');
      assert.equal(await first.text(), 'o\n');
      // Its second poll is the same session: admitted.
      assert.equal((await open('first')).status, 200);
      const second = await open('second');
      assert.equal(second.status, 429);
      assert.ok(second.headers.get('retry-after'));
    } finally {
      await capped.close();
    }
  });
});
