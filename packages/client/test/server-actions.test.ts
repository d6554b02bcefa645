/**
 * The SDK honours the server API's actions on live connections, on every transport
 * (docs/protocol-extensions.md, "Acting on live connections"): `POST /api/disconnect` with
 * `reconnect: false` stops it for good, `POST /api/unsubscribe` ends the subscription without a
 * resubscribe, and `POST /api/subscribe` and the token's `subs` hand the app a live subscription.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Subscription } from '@herald/client';
import { api, publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { TRANSPORTS, closeClients, newClient, states } from './helpers.ts';

describe('the SDK and the server API on live connections', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(async () => {
    closeClients();
    await hub.close();
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: disconnect with reconnect: false closes the client for good`, async () => {
      const user = `stop-${transport}`;
      const client = newClient(hub.url, { transports: [transport], token: () => token({ sub: user }) });
      const seen = states(client);
      client.subscribe('room');
      await until(() => client.state.state === 'connected', 'connected');
      if (transport === 'poll') await until(() => (hub.server.hub.stats.connections.poll ?? 0) >= 1, 'a waiting poll');
      const answer = await api(hub, 'POST', '/api/disconnect', { user, reconnect: false, reason: 'banned' });
      assert.equal(answer.body.disconnected, 1);
      await until(() => client.state.state === 'closed', 'closed');
      const closed = client.state;
      assert.equal(closed.state === 'closed' && closed.error?.closeCode, 4008);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(client.state.state, 'closed', 'it does not come back');
      assert.ok(!seen.some((s) => s.state === 'disconnected'), 'no reconnect was planned');
    });

    it(`${transport}: unsubscribe ends the subscription; the SDK does not subscribe again`, async () => {
      const user = `unsub-${transport}`;
      const client = newClient(hub.url, { transports: [transport], token: () => token({ sub: user }) });
      const sub = client.subscribe(`u:${transport}`);
      const keep = client.subscribe(`k:${transport}`);
      await until(() => sub.state === 'subscribed' && keep.state === 'subscribed', 'subscribed');
      if (transport === 'poll') return; // a poll has no lasting subscription to take away (documented)
      const answer = await api(hub, 'POST', '/api/unsubscribe', { user, channel: `u:${transport}` });
      assert.deepEqual(answer.body, { unsubscribed: 1 });
      await until(() => sub.state === 'unsubscribed', 'unsubscribed');
      const got: unknown[] = [];
      keep.on('publication', (p) => got.push(p.data));
      await publish(hub, `k:${transport}`, 'still');
      await until(() => got.length === 1, 'the other channel goes on');
      assert.equal(sub.state, 'unsubscribed');
      assert.equal(client.state.state, 'connected');
    });

    it(`${transport}: the token's subs and POST /api/subscribe give the app a live subscription`, async () => {
      const user = `sub-${transport}`;
      const jwt = () => token({ sub: user, channels: ['lobby'], subs: [`inbox:${user}`] });
      const client = newClient(hub.url, { transports: [transport], token: jwt });
      const given: Subscription[] = [];
      const data: unknown[] = [];
      client.on('subscription', (sub) => {
        given.push(sub);
        sub.on('publication', (p) => data.push(p.data));
      });
      client.subscribe('lobby');
      await until(() => given.some((s) => s.channel === `inbox:${user}`), 'the subs channel');
      await publish(hub, `inbox:${user}`, 'hello');
      await until(() => data.includes('hello'), 'its publication');
      if (transport === 'poll') return; // API subscriptions reach lasting connections only
      const answer = await api(hub, 'POST', '/api/subscribe', { user, channel: `extra:${user}` });
      assert.deepEqual(answer.body, { subscribed: 1 });
      await until(() => given.some((s) => s.channel === `extra:${user}`), 'the API channel');
      await publish(hub, `extra:${user}`, 'extra');
      await until(() => data.includes('extra'), 'its publication');
    });
  }
});
