/** The client API against a real hub, on every transport: delivery, publish, tokens, refusals. */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { HeraldClientError, type Publication } from '@herald/client';
import { api, publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import {
  assertExactlyOnceInOrder,
  closeClients,
  newClient,
  pubs,
  record,
  sleep,
  states,
  TRANSPORTS,
} from './helpers.ts';

let hub: TestHub;
before(async () => {
  hub = await startHub();
});
after(() => hub.close());
afterEach(closeClients);

for (const transport of TRANSPORTS) {
  describe(`over ${transport}`, () => {
    const forced = { transports: [transport] } as const;

    it('receives publications with their fields, and ephemeral ones', async () => {
      const client = newClient(hub.url, { ...forced, token: () => token() });
      const sub = client.subscribe<{ n: number }>(`basic:${transport}`);
      const got: Publication<{ n: number }>[] = [];
      sub.on('publication', (p) => got.push(p));
      await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      assert.equal(client.transport, transport);
      assert.equal(client.state.state, 'connected');
      const a = await publish(hub, sub.channel, { n: 1 });
      await publish(hub, sub.channel, { n: 2 }, { event: 'status_update' });
      await until(() => got.length === 2, 'two publications', 10_000);
      // Ephemeral publications are live only: a long-poll gets them only while a poll is waiting.
      if (transport !== 'poll') {
        await publish(hub, sub.channel, { n: 3 }, { ephemeral: true });
        await until(() => got.length === 3, 'the ephemeral publication', 10_000);
      }
      assert.deepEqual(
        got.map((p) => [p.data.n, p.offset, p.event]),
        [
          [1, 1, undefined],
          [2, 2, 'status_update'],
          [3, undefined, undefined],
        ].slice(0, got.length),
      );
      assert.equal(got[0]!.epoch, a.epoch);
      assert.deepEqual(sub.position, { offset: 2, epoch: a.epoch });
    });

    it('publishes with an acknowledgement, and ephemerally', async () => {
      const client = newClient(hub.url, { ...forced, token: () => token() });
      const sub = client.subscribe(`pub:${transport}`);
      const log = record(sub);
      await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      const first = await client.publish(sub.channel, { text: 'hi' });
      const second = await client.publish(sub.channel, { text: 'again' }, { event: 'chat' });
      assert.equal(first.offset, 1);
      assert.deepEqual(second, { offset: 2, epoch: first.epoch });
      await until(() => pubs(log).length === 2, 'own publications', 10_000);
      assert.equal(await client.publish(sub.channel, { typing: true }, { ephemeral: true }), undefined);
      if (transport !== 'poll') await until(() => pubs(log).length === 3, 'the ephemeral publication', 10_000);
      assert.deepEqual(
        pubs(log).map((e) => e.kind === 'pub' && e.data),
        [{ text: 'hi' }, { text: 'again' }, { typing: true }].slice(0, pubs(log).length),
      );
      const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(sub.channel)}/history`);
      assert.equal(history.body.publications.length, 2, 'ephemeral is not stored');
    });

    it('gets its own publication when it publishes right after subscribing', async () => {
      const client = newClient(hub.url, { ...forced, token: () => token() });
      const sub = client.subscribe(`own:${transport}`);
      const log = record(sub);
      const seen = states(client);
      // Over WebSocket the publish goes out after the subscribe; elsewhere wait for the stream.
      if (transport !== 'websocket') await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      await client.publish(sub.channel, 'mine');
      await until(() => pubs(log).length === 1, 'the publication', 10_000);
      assert.ok(!seen.some((s) => s.state === 'disconnected'), 'no reconnect was needed');
    });

    it('stops on a refused token (4001 / 401): state closed with the error, no reconnect', async () => {
      let calls = 0;
      const client = newClient(hub.url, {
        ...forced,
        token: () => {
          calls++;
          return token({ secret: 'not-the-hub-secret-0123456789abcdef' });
        },
      });
      client.subscribe(`auth:${transport}`);
      await until(() => client.state.state === 'closed', 'closed', 10_000);
      const state = client.state;
      assert.equal(state.state, 'closed');
      assert.ok(state.state === 'closed' && state.error instanceof HeraldClientError);
      assert.equal(state.error?.code, 'unauthorized');
      assert.equal(state.error?.closeCode, 4001);
      await sleep(500); // many backoff periods of FAST
      assert.equal(calls, 1, 'the token function was not called again: no reconnect');
      assert.equal(client.state.state, 'closed');
    });

    it('renews a short-lived token before it expires, without dropping the connection', async () => {
      let calls = 0;
      const client = newClient(hub.url, {
        ...forced,
        token: () => {
          calls++;
          return token({ expiresIn: 3 });
        },
      });
      const seen = states(client);
      const sub = client.subscribe(`renew:${transport}`);
      const log = record(sub);
      await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      const clientId = client.clientId;
      await until(() => calls >= 3, 'two renewals', 20_000);
      await publish(hub, sub.channel, 'after renewals');
      await until(() => pubs(log).length === 1, 'a publication after the original token expired', 10_000);
      assert.deepEqual(
        seen.filter((s) => s.state !== 'connecting').map((s) => s.state),
        ['connected'],
        'never disconnected',
      );
      if (transport === 'websocket') assert.equal(client.clientId, clientId, 'same connection (refresh command)');
    });

    it('refuses a channel the token does not allow with a typed error, and keeps the others', async () => {
      const client = newClient(hub.url, { ...forced, token: () => token({ channels: ['ok:*'] }) });
      const ok = client.subscribe(`ok:${transport}`);
      const no = client.subscribe(`no:${transport}`);
      const errors: HeraldClientError[] = [];
      no.on('error', (e) => errors.push(e));
      const log = record(ok);
      await until(() => errors.length === 1 && ok.state === 'subscribed', 'the refusal', 10_000);
      assert.equal(errors[0]!.code, 'forbidden');
      assert.equal(no.state, 'unsubscribed');
      await publish(hub, ok.channel, 1);
      await until(() => pubs(log).length === 1, 'the permitted channel still delivers', 10_000);
      assert.throws(() => client.subscribe('bad channel'), { code: 'bad_channel' });
      assert.throws(() => client.subscribe(ok.channel), { code: 'already_subscribed' });
    });

    it('resumes from a position the app kept (since), with recovered: true and the missed publications', async () => {
      const channel = `since:${transport}`;
      const p1 = await publish(hub, channel, 1);
      await publish(hub, channel, 2);
      await publish(hub, channel, 3);
      const client = newClient(hub.url, { ...forced, token: () => token() });
      const sub = client.subscribe(channel, { since: p1 });
      const log = record(sub);
      await until(() => pubs(log).length === 2, 'the two missed publications', 10_000);
      assert.deepEqual(log[0], { kind: 'recovered', recovered: true, epoch: p1.epoch });
      assert.deepEqual(
        pubs(log).map((e) => e.kind === 'pub' && e.data),
        [2, 3],
      );
      await publish(hub, channel, 4);
      await until(() => pubs(log).length === 3, 'then live', 10_000);
      assertExactlyOnceInOrder(log);
    });

    it('unsubscribes, and subscribes to more channels on the same connection', async () => {
      const client = newClient(hub.url, { ...forced, token: () => token() });
      const a = client.subscribe(`multi-a:${transport}`);
      const logA = record(a);
      await until(() => a.state === 'subscribed', 'a', 10_000);
      const b = client.subscribe(`multi-b:${transport}`);
      const logB = record(b);
      await until(() => b.state === 'subscribed', 'b', 10_000);
      await publish(hub, a.channel, 'a1');
      await publish(hub, b.channel, 'b1');
      await until(() => pubs(logA).length === 1 && pubs(logB).length === 1, 'both', 10_000);
      a.unsubscribe();
      assert.equal(a.state, 'unsubscribed');
      await publish(hub, a.channel, 'a2');
      await publish(hub, b.channel, 'b2');
      await until(() => pubs(logB).length === 2, 'b2', 10_000);
      await sleep(100);
      assert.equal(pubs(logA).length, 1, 'nothing after unsubscribe');
      assert.ok(
        logB.every((e) => e.kind === 'pub'),
        'adding a channel is not a resume the app hears about',
      );
    });
  });
}

describe('tokens and close codes', () => {
  for (const transport of ['websocket', 'sse'] as const) {
    it(`on ${transport}, 4003 (renewal failed) reconnects with a fresh token and resumes`, async () => {
      let calls = 0;
      const client = newClient(hub.url, {
        transports: [transport],
        token: () => {
          calls++;
          if (calls === 2) throw new Error('token service down');
          return token({ expiresIn: 2 });
        },
      });
      const seen = states(client);
      const sub = client.subscribe(`expire:${transport}`);
      const log = record(sub);
      await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      await publish(hub, sub.channel, 1);
      await until(
        () => seen.some((s) => s.state === 'disconnected' && s.error.closeCode === 4003),
        'the hub ending the expired connection',
        15_000,
      );
      await until(() => client.state.state === 'connected' && sub.state === 'subscribed', 'reconnected', 10_000);
      await publish(hub, sub.channel, 2);
      await until(() => pubs(log).length === 2, 'both publications', 10_000);
      assertExactlyOnceInOrder(log);
      assert.ok(calls >= 3, 'a fresh token for the reconnect');
      assert.ok(log.some((e) => e.kind === 'recovered' && e.recovered));
    });
  }

  it('accepts a static token string', async () => {
    const client = newClient(hub.url, { transports: ['websocket'], token: await token() });
    const sub = client.subscribe('static:1');
    await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
  });

  it('checks its options and names the bad one', () => {
    assert.throws(() => newClient(hub.url, { transports: [] }), /"transports"/);
    assert.throws(() => newClient(hub.url, { minReconnectDelayMs: -1 }), /"minReconnectDelayMs"/);
    // An unset environment variable gives ''; the error says so rather than just "Invalid option".
    assert.throws(() => newClient(hub.url, { token: '' }), /"token": is an empty string \(was the variable/);
  });
});

describe('presence, history, join and leave', () => {
  it('over WebSocket: join/leave events', async () => {
    const alice = newClient(hub.url, { transports: ['websocket'], token: () => token({ sub: 'alice' }) });
    const room = alice.subscribe('room:ws', { joinLeave: true });
    const joins: string[] = [];
    const leaves: string[] = [];
    room.on('join', (c) => joins.push(c.userId));
    room.on('leave', (c) => leaves.push(c.userId));
    await until(() => room.state === 'subscribed', 'alice subscribed', 10_000);
    const bob = newClient(hub.url, { transports: ['websocket'], token: () => token({ sub: 'bob' }) });
    const bobRoom = bob.subscribe('room:ws');
    await until(() => joins.includes('bob'), 'bob joined', 10_000);
    bobRoom.unsubscribe();
    await until(() => leaves.includes('bob'), 'bob left', 10_000);
  });

  it('over SSE: join events', async () => {
    const alice = newClient(hub.url, { transports: ['sse'], token: () => token({ sub: 'alice' }) });
    const room = alice.subscribe('room:sse', { joinLeave: true });
    const joins: string[] = [];
    room.on('join', (c) => joins.push(c.userId));
    await until(() => room.state === 'subscribed', 'alice subscribed', 10_000);
    const bob = newClient(hub.url, { transports: ['websocket'], token: () => token({ sub: 'bob' }) });
    bob.subscribe('room:sse');
    await until(() => joins.includes('bob'), 'bob joined', 10_000);
  });

  // PROTOCOL.md v1.1 section 4: over SSE and long-polling the SDK reads presence and history over
  // HTTP with its own token, within the token's `channels` patterns, as a WebSocket client does.
  for (const transport of TRANSPORTS) {
    it(`over ${transport}: presence and history of the token's channels; forbidden outside them`, async () => {
      const channel = `room:reads-${transport}`;
      const alice = newClient(hub.url, {
        transports: [transport],
        token: () => token({ sub: 'alice', channels: ['room:*'], publish: ['room:*'] }),
      });
      const room = alice.subscribe(channel);
      await until(() => room.state === 'subscribed', 'alice subscribed', 10_000);
      assert.equal(alice.transport, transport);
      const bob = newClient(hub.url, { transports: ['websocket'], token: () => token({ sub: 'bob' }) });
      const bobRoom = bob.subscribe(channel);
      await until(() => bobRoom.state === 'subscribed', 'bob subscribed', 10_000);
      // Long-poll waiters are not in presence (PROTOCOL.md section 7: no server session).
      const expected = transport === 'poll' ? ['bob'] : ['alice', 'bob'];
      const present = await alice.presence(channel);
      assert.deepEqual(present.map((c) => c.userId).sort(), expected);

      await alice.publish(channel, 1);
      const p2 = await alice.publish(channel, 2);
      await alice.publish(channel, 3);
      const all = await alice.history(channel);
      assert.deepEqual(
        all.publications.map((p) => p.data),
        [1, 2, 3],
      );
      assert.equal(all.offset, 3);
      assert.equal(all.epoch, p2.epoch);
      const since = await alice.history(channel, { since: p2 });
      assert.deepEqual(
        since.publications.map((p) => p.data),
        [3],
      );
      assert.equal(since.recovered, true);
      const last = await alice.history(channel, { limit: 1 });
      assert.deepEqual(
        last.publications.map((p) => p.data),
        [3],
      );
      for (const read of [() => alice.presence('secret:1'), () => alice.history('secret:1')]) {
        await assert.rejects(read(), (error: HeraldClientError) => {
          assert.equal(error.code, 'forbidden');
          assert.match(error.message, /"channels" patterns/);
          return true;
        });
      }
    });
  }

  it('rejects requests after close, and times out while no connection comes', async () => {
    const client = newClient('http://127.0.0.1:9', { transports: ['websocket'], token: () => token() });
    await assert.rejects(client.publish('x:1', 1, { timeoutMs: 300 }), { code: 'timeout' });
    const controller = new AbortController();
    const aborted = client.publish('x:1', 1, { signal: controller.signal });
    controller.abort(new Error('changed my mind'));
    await assert.rejects(aborted, /changed my mind/);
    const pending = client.publish('x:1', 1);
    client.close();
    await assert.rejects(pending, { code: 'closed' });
    assert.deepEqual(client.state, { state: 'closed' });
  });
});
