/**
 * Socket.IO clients on the hub, over each Engine.IO mode (long-polling only, WebSocket only, and
 * polling upgraded to WebSocket), with the real socket.io-client against a real hub: commands and
 * acks, publications from and to every other transport, presence, history, resume, expiry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventSource } from 'eventsource';
import { api, publish, sleep, token, until } from '../../../test/support/hub.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';
import { MODES, SioClient, startSioHub, type Mode, type SioHub } from './support.ts';

let hub: SioHub;
const clients: SioClient[] = [];
before(async () => {
  hub = await startSioHub();
});
after(async () => {
  for (const client of clients) client.close();
  await hub.close();
});

async function connect(mode: Mode, claims: Parameters<typeof token>[0] = {}): Promise<SioClient> {
  const client = await SioClient.connect(hub.url, mode, { auth: { token: await token(claims) } });
  clients.push(client);
  return client;
}

/** The publication fields every transport must agree on (ts and info aside). */
function envelope(pub: any): any {
  const { channel, offset, epoch, data, event } = pub;
  return { channel, offset, epoch, data, event };
}

for (const mode of MODES) {
  describe(`Socket.IO over ${mode}`, () => {
    const ch = (name: string): string => `sio-${mode}:${name}`;

    it('connects on the expected transport and says who it is', async () => {
      const client = await connect(mode, { sub: 'carol' });
      assert.equal(client.transport, mode === 'polling' ? 'polling' : 'websocket');
      await until(() => client.events('herald.connected').length === 1, 'herald.connected');
      const [connected] = client.events('herald.connected')[0] as [any];
      assert.equal(connected.userId, 'carol');
      assert.equal(typeof connected.clientId, 'string');
    });

    it('receives publications from the HTTP API: message for unnamed, the event name for named', async () => {
      const client = await connect(mode);
      const channel = ch('api');
      const sub = await client.ok('subscribe', { channel });
      assert.deepEqual(Object.keys(sub).sort(), ['channel', 'epoch', 'offset', 'ok']);
      assert.equal(sub.offset, 0);
      const first = await publish(hub, channel, { text: 'hi' });
      const second = await publish(hub, channel, { status: 'shipped' }, { event: 'status_update' });
      await until(() => client.publications(channel).length === 2, 'two publications');
      const [message] = client.events('message').at(-1) as [any];
      assert.deepEqual(envelope(message), {
        channel,
        offset: first.offset,
        epoch: sub.epoch,
        data: { text: 'hi' },
        event: undefined,
      });
      const [data, pub] = client.events('status_update').at(-1) as [any, any];
      assert.deepEqual(data, { status: 'shipped' });
      assert.deepEqual(envelope(pub), {
        channel,
        offset: second.offset,
        epoch: sub.epoch,
        data: { status: 'shipped' },
        event: 'status_update',
      });
      assert.equal(typeof pub.ts, 'number');
    });

    it('publications named like Socket.IO reserved events arrive on message, intact', async () => {
      const client = await connect(mode);
      const channel = ch('reserved');
      await client.ok('subscribe', { channel });
      for (const event of ['connect', 'disconnect', 'connect_error', 'message']) {
        await publish(hub, channel, { event }, { event });
      }
      await until(() => client.publications(channel).length === 4, 'four publications');
      assert.deepEqual(
        client.events('message').map(([pub]) => pub.event),
        ['connect', 'disconnect', 'connect_error', 'message'],
      );
      assert.ok(client.socket.connected, 'the client kept its connection');
      assert.equal(client.connects, 1);
    });

    it('gets the same envelope as WebSocket and SSE subscribers, both ways', async () => {
      const channel = ch('cross');
      const jwt = await token();
      const sio = await connect(mode);
      await sio.ok('subscribe', { channel });
      const ws = await WsTestClient.connect(hub.wsUrl, jwt);
      await ws.ok('subscribe', { channel });
      const sse: any[] = [];
      const source = new EventSource(`${hub.url}/sse?channel=${encodeURIComponent(channel)}&token=${jwt}`);
      source.onmessage = (e) => sse.push(JSON.parse(e.data));
      source.addEventListener('from-sio', (e) => sse.push(JSON.parse(e.data)));
      await new Promise<void>((resolve) => source.addEventListener('herald.connected', () => resolve()));
      try {
        // From the HTTP API, from a WebSocket client, from this Socket.IO client (named event).
        await publish(hub, channel, { from: 'api' });
        await ws.ok('publish', { channel, data: { from: 'ws' } });
        const ack = await sio.ok('publish', { channel, data: { from: 'sio' }, event: 'from-sio' });
        assert.deepEqual(Object.keys(ack).sort(), ['epoch', 'offset', 'ok']);
        await until(
          () => sio.publications(channel).length === 3 && ws.publications(channel).length === 3 && sse.length === 3,
          'three publications everywhere',
        );
        const expected = ws.publications(channel).map(envelope);
        assert.deepEqual(
          expected.map((p) => p.data.from),
          ['api', 'ws', 'sio'],
        );
        assert.deepEqual(sio.publications(channel).map(envelope), expected);
        assert.deepEqual(sse.map(envelope), expected);
        assert.equal(expected[2].offset, ack.offset);
        assert.deepEqual(sio.events('from-sio').at(-1)?.[0], { from: 'sio' });
      } finally {
        source.close();
        ws.close();
      }
    });

    it('answers every command with an ack carrying the hub error codes', async () => {
      const client = await connect(mode, { channels: [`sio-${mode}:*`], publish: [`sio-${mode}:ok*`] });
      const code = async (event: string, ...args: unknown[]): Promise<string> => {
        const answer = await client.call(event, ...args);
        assert.equal(answer.ok, false, JSON.stringify(answer));
        assert.equal(typeof answer.error.message, 'string');
        return answer.error.code;
      };
      assert.equal(await code('subscribe', { channel: 'not a channel' }), 'bad_channel');
      assert.equal(await code('subscribe', { channel: 'elsewhere:1' }), 'forbidden');
      assert.equal(await code('subscribe', { channel: ch('a'), since: { offset: -1 } }), 'bad_request');
      assert.equal(await code('subscribe', 'just a string'), 'bad_request');
      await client.ok('subscribe', { channel: ch('a') });
      assert.equal(await code('subscribe', { channel: ch('a') }), 'already_subscribed');
      assert.equal(await code('publish', { channel: ch('a'), data: 1 }), 'forbidden');
      assert.equal(await code('publish', { channel: ch('ok'), data: 1, event: 'herald.x' }), 'reserved_event');
      assert.equal(await code('publish', { channel: ch('ok') }), 'bad_request');
      assert.equal(await code('publish', { channel: ch('ok'), data: 'x'.repeat(70_000) }), 'too_large');
      // Binary attachments would silently become {"type":"Buffer",...} in JSON: refused instead.
      assert.equal(await code('publish', { channel: ch('ok'), data: Buffer.from('hi') }), 'bad_request');
      assert.equal(await code('publish', { channel: ch('ok'), data: { deep: [1, new Uint8Array(2)] } }), 'bad_request');
      assert.equal(await code('presence', { channel: 'elsewhere:1' }), 'forbidden');
      assert.equal(await code('history', { channel: 'elsewhere:1' }), 'forbidden');
      assert.equal(await code('history', { channel: ch('a'), limit: 'ten' }), 'bad_request');
      assert.equal(await code('refresh', {}), 'bad_request');
      assert.equal(await code('refresh', { token: 'nope' }), 'unauthorized');
      assert.equal(await code('no-such-command', {}), 'bad_request');
      assert.deepEqual(await client.call('unsubscribe', { channel: ch('a') }), { ok: true });
      // Without an ack, a failure comes back as herald.error.
      client.socket.emit('subscribe', { channel: 'elsewhere:2' });
      await until(() => client.events('herald.error').length === 1, 'herald.error');
      assert.deepEqual(client.events('herald.error')[0]?.[0], {
        event: 'subscribe',
        code: 'forbidden',
        message: `not permitted by the token's "channels" patterns to subscribe to elsewhere:2`,
      });
      // A client `error` event is just an unknown command, not a crash.
      client.socket.emit('error', {});
      await until(() => client.events('herald.error').length === 2, 'second herald.error');
      assert.equal(client.socket.connected, true);
      const ok = await client.ok('publish', { channel: ch('ok'), data: { fine: true }, ephemeral: true });
      assert.deepEqual(ok, { ok: true });
    });

    it('stops delivering after unsubscribe', async () => {
      const client = await connect(mode);
      const channel = ch('unsub');
      await client.ok('subscribe', { channel });
      await publish(hub, channel, 1);
      await until(() => client.publications(channel).length === 1, 'first publication');
      await client.ok('unsubscribe', { channel });
      await publish(hub, channel, 2);
      await client.ok('publish', { channel: ch('after-unsub'), data: 'marker' });
      // The answer to a later command comes after anything the hub wrote before it.
      assert.equal(client.publications(channel).length, 1);
    });

    it('shows presence and sends join/leave to subscribers that asked', async () => {
      const channel = ch('room');
      const watcher = await connect(mode, { sub: 'watcher' });
      await watcher.ok('subscribe', { channel, joinLeave: true });
      const guest = await connect(mode, { sub: 'guest', info: { name: 'Guest' } });
      await guest.ok('subscribe', { channel });
      await until(() => watcher.events('herald.join').length === 1, 'join');
      const [join] = watcher.events('herald.join')[0] as [any];
      assert.equal(join.channel, channel);
      assert.equal(join.client.userId, 'guest');
      assert.deepEqual(join.client.info, { name: 'Guest' });
      const presence = await watcher.ok('presence', { channel });
      assert.deepEqual(presence.clients.map((c: any) => c.userId).sort(), ['guest', 'watcher']);
      const rest = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/presence`);
      assert.equal(rest.body.clients.length, 2);
      guest.close();
      await until(() => watcher.events('herald.leave').length === 1, 'leave');
      assert.equal((watcher.events('herald.leave')[0] as [any])[0].client.clientId, join.client.clientId);
      assert.equal(guest.events('herald.join').length, 0, 'only subscribers that asked get join/leave');
    });

    it('serves history, with limit and since', async () => {
      const client = await connect(mode);
      const channel = ch('history');
      const acks = [];
      for (let i = 1; i <= 5; i++) acks.push(await publish(hub, channel, { i }));
      const all = await client.ok('history', { channel });
      assert.deepEqual(
        all.publications.map((p: any) => p.data.i),
        [1, 2, 3, 4, 5],
      );
      assert.equal(all.offset, 5);
      const last2 = await client.ok('history', { channel, limit: 2 });
      assert.deepEqual(
        last2.publications.map((p: any) => p.offset),
        [4, 5],
      );
      const since = await client.ok('history', { channel, since: { offset: 3, epoch: all.epoch } });
      assert.equal(since.recovered, true);
      assert.deepEqual(
        since.publications.map((p: any) => p.offset),
        [4, 5],
      );
    });

    it('applies an idempotent publish once and answers repeats with the first result', async () => {
      const client = await connect(mode);
      const channel = ch('idem');
      await client.ok('subscribe', { channel });
      const first = await client.ok('publish', { channel, data: 'once', idempotencyKey: 'k-1' });
      const again = await client.ok('publish', { channel, data: 'once', idempotencyKey: 'k-1' });
      assert.deepEqual(again, first);
      await client.ok('publish', { channel, data: 'marker' });
      await until(() => client.publications(channel).length === 2, 'publications');
      assert.deepEqual(
        client.publications(channel).map((p) => p.data),
        ['once', 'marker'],
      );
    });

    it('resumes from a position: the missed publications come right after the ack, then live ones', async () => {
      const channel = ch('resume');
      const first = await connect(mode);
      const sub = await first.ok('subscribe', { channel });
      await publish(hub, channel, 1);
      await until(() => first.publications(channel).length === 1, 'first');
      const position = { offset: first.publications(channel)[0].offset, epoch: sub.epoch };
      first.close();
      for (let i = 2; i <= 4; i++) await publish(hub, channel, i);
      const second = await connect(mode);
      const resumed = await second.ok('subscribe', { channel, since: position });
      assert.deepEqual(resumed, { ok: true, channel, offset: 4, epoch: sub.epoch, recovered: true });
      await publish(hub, channel, 5);
      await until(() => second.publications(channel).length === 4, 'replayed and live');
      assert.deepEqual(
        second.publications(channel).map((p) => p.offset),
        [2, 3, 4, 5],
      );
      const stale = await connect(mode);
      const lost = await stale.ok('subscribe', { channel: ch('resume-2'), since: { offset: 3, epoch: 'other' } });
      assert.equal(lost.recovered, false);
    });

    it('ends subscriptions a refreshed token no longer permits', async () => {
      const client = await connect(mode, { channels: ['sio-*'] });
      await client.ok('subscribe', { channel: ch('kept') });
      await client.ok('subscribe', { channel: ch('lost') });
      await client.ok('refresh', { token: await token({ channels: [ch('kept')] }) });
      await until(() => client.events('herald.unsubscribed').length === 1, 'herald.unsubscribed');
      assert.deepEqual(client.events('herald.unsubscribed')[0]?.[0], {
        channel: ch('lost'),
        code: 2403,
        reason: 'no longer permitted',
      });
    });
  });
}

describe('Socket.IO next to the hub', () => {
  it('refreshes tokens, and ends connections whose token expired with 4003 (each mode)', async () => {
    const refreshed = await Promise.all(
      MODES.map(async (mode) => {
        const client = await SioClient.connect(hub.url, mode, {
          auth: { token: await token({ expiresIn: 3 }) },
          reconnection: false,
        });
        clients.push(client);
        const answer = await client.ok('refresh', { token: await token({ expiresIn: 3600 }) });
        assert.ok(answer.expiresIn > 3500);
        return client;
      }),
    );
    const expiring = await Promise.all(
      MODES.map(async (mode) => {
        const client = await SioClient.connect(hub.url, mode, {
          auth: { token: await token({ expiresIn: 3 }) },
          reconnection: false,
        });
        clients.push(client);
        return client;
      }),
    );
    await until(() => expiring.every((c) => c.disconnects.length === 1), 'the expiry disconnects', 15_000);
    for (const client of expiring) {
      assert.deepEqual(client.events('herald.disconnect')[0]?.[0], {
        code: 4003,
        reason: 'token expired',
        reconnect: true,
      });
      // "reconnect": the transport ends (Socket.IO clients retry by themselves), not "io server disconnect".
      assert.match(client.disconnects[0] ?? '', /^transport (close|error)$/);
    }
    await sleep(1500);
    for (const client of refreshed) assert.equal(client.socket.connected, true, 'a refreshed connection stays');
  });

  it('counts connections and deliveries under transport="socketio" in /metrics', async () => {
    const client = await connect('websocket');
    await client.ok('subscribe', { channel: 'metrics:1' });
    await publish(hub, 'metrics:1', 'x');
    await until(() => client.publications('metrics:1').length === 1, 'publication');
    const text = (await api(hub, 'GET', '/metrics')).body as string;
    const connections = Number(/herald_connections\{transport="socketio"\} (\d+)/.exec(text)?.[1]);
    const deliveries = Number(/herald_deliveries_total\{transport="socketio"\} (\d+)/.exec(text)?.[1]);
    assert.equal(connections, hub.server.hub.stats.connections.socketio);
    assert.ok(connections >= 1);
    assert.ok(deliveries >= 1);
    client.close();
    await until(() => (hub.server.hub.stats.connections.socketio ?? 0) < connections, 'the count to go down');
  });

  it('ends a flooding client with 4005, which Socket.IO retries by itself', async () => {
    const client = await SioClient.connect(hub.url, 'websocket', {
      auth: { token: await token() },
      reconnection: false,
    });
    clients.push(client);
    const limited = hub.server.hub.stats.rateLimited;
    for (let i = 0; i < 400; i++) client.socket.emit('presence', { channel: 'flood:1' });
    await until(() => client.disconnects.length === 1, 'the disconnect');
    const [goodbye] = client.events('herald.disconnect')[0] as [any];
    assert.equal(goodbye.code, 4005);
    assert.equal(goodbye.reconnect, true);
    assert.match(goodbye.reason, /^too many commands/);
    assert.match(client.disconnects[0] ?? '', /^transport (close|error)$/);
    assert.equal(hub.server.hub.stats.rateLimited, limited + 1);
  });

  it('disconnects a user at the Socket.IO level: no automatic reconnect', async () => {
    const client = await connect('upgrade', { sub: 'kicked' });
    await hub.server.hub.disconnectUser('kicked', { code: 1000, reason: 'signed out' });
    await until(() => client.disconnects.length === 1, 'the disconnect');
    assert.deepEqual(client.events('herald.disconnect')[0]?.[0], {
      code: 1000,
      reason: 'signed out',
      reconnect: false,
    });
    assert.equal(client.disconnects[0], 'io server disconnect');
    await sleep(300);
    assert.equal(client.socket.connected, false);
    assert.equal(client.connects, 1);
  });

  it('closes a connection that sends a packet past the size limit, and only that one', async () => {
    const big = await connect('websocket');
    const bystander = await connect('polling');
    big.socket.emit('publish', { channel: 'big:1', data: 'x'.repeat(100_000) });
    await until(() => big.disconnects.length === 1, 'the disconnect');
    assert.equal(bystander.socket.connected, true);
    assert.equal((await bystander.call('history', { channel: 'big:1' })).publications.length, 0);
  });

  it("keeps the hub's own routes and upgrades working", async () => {
    assert.equal((await api(hub, 'GET', '/healthz')).status, 200);
    assert.equal((await api(hub, 'GET', '/nope')).status, 404);
    const ws = await WsTestClient.connect(hub.wsUrl, await token());
    await ws.ok('subscribe', { channel: 'routes:1' });
    ws.close();
    const refused = await new Promise<number>((resolve) => {
      const other = new WsTestClient(hub.wsUrl.replace('/ws', '/elsewhere'));
      other.opened.catch((error: Error) => resolve(Number(/HTTP (\d+)/.exec(error.message)?.[1])));
    });
    assert.equal(refused, 404);
  });

  it('refuses browser origins outside the policy before any handshake (403)', async () => {
    const url = `${hub.url}/socket.io/?EIO=4&transport=polling`;
    const foreign = await fetch(url, { headers: { origin: 'https://evil.example' } });
    assert.equal(foreign.status, 403);
    assert.equal(((await foreign.json()) as any).error.code, 'origin_not_allowed');
    const same = await fetch(url, { headers: { origin: hub.url } });
    assert.equal(same.status, 200);
    assert.match(await same.text(), /^0\{"sid":/);
  });
});
