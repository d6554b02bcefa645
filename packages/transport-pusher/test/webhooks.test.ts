/**
 * Webhooks in Pusher's format, received by a real HTTP server and checked as Pusher's own server
 * SDK checks them (`pusher.webhook(request)`: X-Pusher-Key, X-Pusher-Signature over the body),
 * with batched `events[]`: channel_occupied / vacated, member_added / removed, client_event,
 * cache_miss, subscription_count. And `pusher_internal:subscription_count` to subscribers.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { until } from '../../../test/support/hub.ts';
import { APP, TestClient, serverSdk, startPusherHub, type PusherHub } from './support.ts';

describe('Pusher webhooks', () => {
  let hub: PusherHub;
  let receiver: Server;
  const bodies: Array<{ valid: boolean; key: string; events: any[] }> = [];
  const events = (): any[] => bodies.flatMap((b) => b.events);
  const clients: TestClient[] = [];

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        // Checked by the official SDK, as an app's webhook endpoint does.
        const webhook = serverSdk(1).webhook({ headers: req.headers as Record<string, string>, rawBody: body });
        bodies.push({
          valid: webhook.isValid(),
          key: String(req.headers['x-pusher-key']),
          events: webhook.getEvents(),
        });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as { port: number };
    hub = await startPusherHub(
      {},
      {
        apps: [{ ...APP, subscriptionCount: true, webhooks: { url: `http://127.0.0.1:${port}/pusher/webhooks` } }],
      },
    );
  });
  after(async () => {
    for (const c of clients) c.close();
    await hub.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  it('sends signed, batched events for channels, members, client events and cache misses', async () => {
    const alice = new TestClient(hub.port, { member: { user_id: 'alice' } });
    const bob = new TestClient(hub.port, { member: { user_id: 'bob' } });
    clients.push(alice, bob);
    await alice.subscribe('presence-hooks');
    await bob.subscribe('presence-hooks');
    await until(
      () => events().some((e) => e.name === 'member_added' && e.user_id === 'bob'),
      'member_added for bob',
      10_000,
    );
    alice.pusher.channel('presence-hooks').trigger('client-note', { n: 1 });
    await alice.subscribe('cache-hooks');
    await until(
      () => events().some((e) => e.name === 'client_event') && events().some((e) => e.name === 'cache_miss'),
      'client_event and cache_miss',
      10_000,
    );
    bob.close();
    await until(() => events().some((e) => e.name === 'member_removed'), 'member_removed', 10_000);
    alice.close();
    await until(
      () => events().some((e) => e.name === 'channel_vacated' && e.channel === 'presence-hooks'),
      'channel_vacated',
      10_000,
    );
    assert.ok(
      bodies.every((b) => b.valid && b.key === APP.key),
      'every body is signed with the app secret',
    );
    const names = events().map((e) => `${e.name} ${e.channel}`);
    for (const expected of [
      'channel_occupied presence-hooks',
      'member_added presence-hooks',
      'client_event presence-hooks',
      'cache_miss cache-hooks',
      'member_removed presence-hooks',
      'channel_vacated presence-hooks',
    ]) {
      assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
    }
    const clientEvent = events().find((e) => e.name === 'client_event');
    assert.equal(clientEvent.event, 'client-note');
    assert.deepEqual(JSON.parse(clientEvent.data), { n: 1 });
    assert.equal(clientEvent.user_id, 'alice');
    assert.match(clientEvent.socket_id, /^\d+\.\d+$/);
    assert.deepEqual(
      events()
        .filter((e) => e.name === 'member_added')
        .map((e) => e.user_id)
        .sort(),
      ['alice', 'bob'],
    );
  });

  it('subscription_count: a webhook event and pusher_internal:subscription_count to subscribers', async () => {
    const one = new TestClient(hub.port);
    const two = new TestClient(hub.port);
    clients.push(one, two);
    await one.subscribe('counted');
    await two.subscribe('counted');
    await until(
      () => (one.pusher.channel('counted') as any).subscriptionCount === 2,
      'subscriptionCount 2 in pusher-js',
      10_000,
    );
    await until(
      () =>
        events().some((e) => e.name === 'subscription_count' && e.channel === 'counted' && e.subscription_count === 2),
      'the subscription_count webhook',
      10_000,
    );
  });
});
