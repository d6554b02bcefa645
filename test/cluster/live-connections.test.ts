/**
 * The server API on live connections (docs/protocol-extensions.md, "Acting on live connections"):
 * disconnect, unsubscribe, subscribe (and the token's `subs`), connections, info, presence-stats
 * and history removal. On one node with the embedded broker, and across two nodes sharing Redis
 * and sharing NATS, with real clients on every transport: `ws`, the `eventsource` package and raw
 * SSE over fetch, long-polls over fetch, and socket.io-client. The call always goes to node `a`;
 * the clients sit on both nodes.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { cursorEntry } from '@herald/protocol';
import { HeraldServer, type HeraldOptions } from '@herald/server';
import { attachSocketIo } from '@herald/transport-socketio';
import { SioClient } from '../../packages/transport-socketio/test/support.ts';
import { API_KEY, JWT_SECRET, api, listening, publish, token, until, type TestHub } from '../support/hub.ts';
import { deleteNatsNamespace } from '../support/nats.ts';
import { poll } from '../support/poll.ts';
import { REDIS_URL, deleteRedisPrefix, testPrefix } from '../support/redis.ts';
import { requireService } from '../support/services.ts';
import { RawSse, openEventSource, streamQuery, type EventSourceClient } from '../support/sse.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { recordFigures } from '../reliability/support/figures.ts';

type Kind = 'memory' | 'redis' | 'nats';
const NATS_URL = 'nats://127.0.0.1:4222';

async function startNode(
  kind: Kind,
  prefix: string,
  node: string,
  extra: Partial<HeraldOptions> = {},
): Promise<TestHub> {
  const history = { size: 100, ttlSeconds: 600 };
  const backend =
    kind === 'memory'
      ? {}
      : kind === 'redis'
        ? await (await import('@herald/broker-redis')).createRedisBackend({ url: REDIS_URL, history, prefix })
        : await (await import('@herald/broker-nats')).createNatsBackend({ url: NATS_URL, history, prefix });
  const options: HeraldOptions = { apiKey: API_KEY, jwtSecret: JWT_SECRET, node, ...backend, ...extra };
  const server = new HeraldServer(options);
  attachSocketIo(server);
  return listening(server);
}

const sioOptions = (jwt: string) => ({ auth: { token: jwt }, reconnection: false });

for (const kind of ['memory', 'redis', 'nats'] as const) {
  describe(`the server API on live connections, ${kind === 'memory' ? 'one node' : `two nodes on ${kind}`}`, () => {
    const prefix = testPrefix().replace(/-/g, '_');
    const started: TestHub[] = [];
    const closers: Array<() => void> = [];
    after(async () => {
      for (const close of closers) close();
      for (const hub of started) await hub.close().catch(() => undefined);
      if (kind === 'redis') await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
      if (kind === 'nats') await deleteNatsNamespace(NATS_URL, prefix).catch(() => undefined);
    });

    /** Node `a` takes the calls; `b` is another node on the same broker (the same one for memory). */
    async function nodes(
      t: TestContext,
      extra: Partial<HeraldOptions> = {},
    ): Promise<{ a: TestHub; b: TestHub } | undefined> {
      if (kind !== 'memory' && !(await requireService(t, kind))) return undefined;
      const a = await startNode(kind, prefix, `${kind}-a-${started.length}`, extra);
      started.push(a);
      if (kind === 'memory') return { a, b: a };
      const b = await startNode(kind, prefix, `${kind}-b-${started.length}`, extra);
      started.push(b);
      return { a, b };
    }

    const track = <T extends { close(): void } | EventSourceClient>(client: T): T => {
      closers.push(() => ('source' in client ? client.source.close() : client.close()));
      return client;
    };

    it('disconnect ends every connection of a user on every node and transport, with the code and `reconnect`', async (t) => {
      const hubs = await nodes(t);
      if (hubs === undefined) return;
      const { a, b } = hubs;
      const jwt = await token({ sub: 'mallory' });
      const ws = track(await WsTestClient.connect(b.wsUrl, jwt));
      await ws.ok('subscribe', { channel: 'room' });
      const sse = track(await RawSse.open(`${b.url}/sse?${streamQuery(['room'], { token: jwt })}`));
      await until(() => sse.events.length > 0, 'herald.connected');
      const sio = track(await SioClient.connect(a.url, 'websocket', sioOptions(jwt)));
      const waiting = poll(a.url, { channels: ['room'], token: jwt, timeout: 20 });
      await until(() => a.server.hub.stats.connections.poll === 1, 'the waiting poll');
      const bystander = track(await WsTestClient.connect(b.wsUrl, await token({ sub: 'bob' })));

      const started = performance.now();
      const answer = await api(a, 'POST', '/api/disconnect', { user: 'mallory', reason: 'banned', reconnect: false });
      const disconnectMs = performance.now() - started;
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual(answer.body, { disconnected: 4 });
      const goodbye = { code: 4008, reason: 'banned', reconnect: false };
      assert.equal(await ws.closed, 4008);
      assert.equal(ws.closeReason, 'banned');
      assert.deepEqual(ws.pushes.at(-1), { push: 'disconnect', ...goodbye });
      await sse.ended;
      assert.deepEqual(sse.named('herald.disconnect'), [goodbye]);
      await until(() => sio.disconnects.length === 1, 'the Socket.IO disconnect');
      assert.deepEqual(sio.events('herald.disconnect')[0]?.[0], goodbye);
      assert.equal(sio.disconnects[0], 'io server disconnect', 'reconnect: false stops socket.io-client');
      const polled = await waiting;
      assert.equal(polled.status, 200);
      assert.deepEqual(polled.body.disconnect, goodbye);
      assert.equal(bystander.closeCode, undefined, 'another user is untouched');
      const infoStarted = performance.now();
      await api(a, 'GET', '/api/info');
      recordFigures(t, `live-connections-${kind}`, {
        disconnectCallMs: Math.round(disconnectMs * 10) / 10,
        infoCallMs: Math.round((performance.now() - infoStarted) * 10) / 10,
      });

      // One connection by its clientId, a code of the application's, the registry's default advice.
      const other = track(await WsTestClient.connect(b.wsUrl, await token({ sub: 'bob' })));
      const otherId = (await api(a, 'GET', '/api/connections?user=bob')).body.connections.find(
        (c: { clientId: string }) => c.clientId !== undefined,
      ).clientId as string;
      const one = await api(a, 'POST', '/api/disconnect', { client: otherId, code: 4100 });
      assert.deepEqual(one.body, { disconnected: 1 });
      const ended = [bystander, other].filter((c) => c.closeCode !== undefined || c.pushes.length > 0);
      await until(() => bystander.closeCode !== undefined || other.closeCode !== undefined, 'the one connection');
      assert.equal(ended.length <= 1, true);
      const gone = bystander.closeCode !== undefined ? bystander : other;
      assert.equal(gone.closeCode, 4100);
      assert.deepEqual(gone.pushes.at(-1), {
        push: 'disconnect',
        code: 4100,
        reason: 'disconnected by the server',
        reconnect: true,
      });
      assert.deepEqual((await api(a, 'POST', '/api/disconnect', { user: 'nobody' })).body, { disconnected: 0 });
    });

    it('disconnect refuses bad input and client tokens', async (t) => {
      const hubs = await nodes(t);
      if (hubs === undefined) return;
      const { a } = hubs;
      for (const [body, what] of [
        [{}, 'exactly one'],
        [{ user: 'x', client: 'y' }, 'exactly one'],
        [{ user: 'x', code: 1000 }, '4000 to 4999'],
        [{ user: 'x', code: 4000.5 }, '4000 to 4999'],
        [{ user: 'x', reason: 'é'.repeat(62) }, '123 bytes'],
        [{ user: 'x', reconnect: 'no' }, 'true or false'],
        [{ user: '' }, '1 to 200'],
      ] as const) {
        const answer = await api(a, 'POST', '/api/disconnect', body);
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.equal(answer.body.error.code, 'bad_request');
        assert.match(answer.body.error.message, new RegExp(what));
      }
      const client = await api(a, 'POST', '/api/disconnect', { user: 'x' }, await token({ sub: 'x' }));
      assert.equal(client.status, 403);
      assert.equal((await api(a, 'GET', '/api/disconnect')).status, 405);
    });

    it('unsubscribe takes a user out of a channel on every node and transport (2000), the connections go on', async (t) => {
      const hubs = await nodes(t);
      if (hubs === undefined) return;
      const { a, b } = hubs;
      const jwt = await token({ sub: 'carol' });
      const ws = track(await WsTestClient.connect(b.wsUrl, jwt));
      await ws.ok('subscribe', { channel: 'room' });
      await ws.ok('subscribe', { channel: 'lobby' });
      const es = track(openEventSource(`${a.url}/sse?${streamQuery(['room', 'lobby'], { token: jwt })}`));
      await until(() => es.control.some((c) => c.type === 'herald.connected'), 'the EventSource');
      const sio = track(await SioClient.connect(b.url, 'websocket', sioOptions(jwt)));
      await sio.ok('subscribe', { channel: 'room' });
      const dave = track(await WsTestClient.connect(a.wsUrl, await token({ sub: 'dave' })));
      await dave.ok('subscribe', { channel: 'room' });

      const answer = await api(a, 'POST', '/api/unsubscribe', { user: 'carol', channel: 'room' });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual(answer.body, { unsubscribed: 3 });
      const unsub = { channel: 'room', code: 2000, reason: 'unsubscribed by the server' };
      await until(() => ws.pushes.some((p) => p.push === 'unsub'), 'the unsub push');
      assert.deepEqual(
        ws.pushes.find((p) => p.push === 'unsub'),
        { push: 'unsub', ...unsub },
      );
      await until(() => es.control.some((c) => c.type === 'herald.unsub'), 'herald.unsub');
      const event = es.control.find((c) => c.type === 'herald.unsub');
      assert.deepEqual(event?.data, unsub);
      assert.doesNotMatch(event?.lastEventId ?? '', /room/, 'the cursor no longer holds the channel');
      assert.match(event?.lastEventId ?? '', /lobby/);
      await until(() => sio.events('herald.unsubscribed').length === 1, 'herald.unsubscribed');
      assert.deepEqual(sio.events('herald.unsubscribed')[0]?.[0], unsub);

      await publish(a, 'room', 'after');
      await publish(a, 'lobby', 'still here');
      await until(() => ws.publications('lobby').length === 1, 'lobby on ws');
      await until(() => es.messages.length === 1, 'lobby on SSE');
      await until(() => dave.publications('room').length === 1, "dave's room publication");
      assert.equal(ws.publications('room').length, 0);
      assert.deepEqual(
        es.messages.map((m) => m.channel),
        ['lobby'],
      );
      assert.equal(sio.publications('room').length, 0);
      assert.equal(ws.closeCode, undefined);
      assert.equal(es.source.readyState, 1, 'the stream goes on');
      const presence = await api(a, 'GET', '/api/channels/room/presence');
      assert.deepEqual(
        presence.body.clients.map((c: { userId: string }) => c.userId),
        ['dave'],
      );
      assert.deepEqual((await api(a, 'POST', '/api/unsubscribe', { user: 'carol', channel: 'room' })).body, {
        unsubscribed: 0,
      });
      assert.equal((await api(a, 'POST', '/api/unsubscribe', { user: 'carol', channel: 'bad channel' })).status, 400);
    });

    it('subscribe puts a user’s live connections into a channel: ws and Socket.IO get the position, SSE an event; polls are left alone', async (t) => {
      const hubs = await nodes(t);
      if (hubs === undefined) return;
      const { a, b } = hubs;
      const jwt = await token({ sub: 'erin', channels: ['lobby'] });
      const ws = track(await WsTestClient.connect(b.wsUrl, jwt));
      const es = track(openEventSource(`${a.url}/sse?${streamQuery(['lobby'], { token: jwt })}`));
      await until(() => es.control.some((c) => c.type === 'herald.connected'), 'the EventSource');
      const sio = track(await SioClient.connect(b.url, 'websocket', sioOptions(jwt)));
      const waiting = poll(a.url, { channels: ['lobby'], token: jwt, timeout: 1 });
      await until(() => a.server.hub.stats.connections.poll === 1, 'the waiting poll');
      const first = await publish(a, 'private:erin', 'before');

      const answer = await api(a, 'POST', '/api/subscribe', { user: 'erin', channel: 'private:erin' });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual(answer.body, { subscribed: 3 }, 'the poll is not a lasting connection');
      const position = { channel: 'private:erin', offset: first.offset, epoch: first.epoch };
      await until(() => ws.pushes.some((p) => p.push === 'sub'), 'the sub push');
      assert.deepEqual(
        ws.pushes.find((p) => p.push === 'sub'),
        { push: 'sub', ...position },
      );
      await until(() => es.control.some((c) => c.type === 'herald.subscribed'), 'herald.subscribed');
      const event = es.control.find((c) => c.type === 'herald.subscribed');
      assert.deepEqual(event?.data, position);
      assert.match(event?.lastEventId ?? '', /private:erin/, 'the cursor holds the new channel');
      await until(() => sio.events('herald.subscribed').length === 1, 'herald.subscribed');
      assert.deepEqual(sio.events('herald.subscribed')[0]?.[0], position);

      const next = await publish(a, 'private:erin', 'after');
      await until(() => ws.publications('private:erin').length === 1, 'ws');
      await until(() => es.messages.some((m) => m.channel === 'private:erin'), 'SSE');
      await until(() => sio.publications('private:erin').length === 1, 'socket.io');
      assert.equal(ws.publications('private:erin')[0].offset, next.offset, 'from now on: nothing before');
      const presence = await api(a, 'GET', '/api/channels/private:erin/presence');
      assert.equal(presence.body.clients.length, 3);
      assert.equal((await waiting).body.channels['private:erin'], undefined);
      // Subscribed already: nothing more. The client may leave it like any subscription.
      assert.deepEqual((await api(a, 'POST', '/api/subscribe', { user: 'erin', channel: 'private:erin' })).body, {
        subscribed: 0,
      });
      await ws.ok('unsubscribe', { channel: 'private:erin' });
    });

    it('a token’s subs subscribe every connection on connect: ws and Socket.IO by push, SSE and polls in their channels', async (t) => {
      const hubs = await nodes(t);
      if (hubs === undefined) return;
      const { a, b } = hubs;
      const jwt = await token({ sub: 'frank', channels: [], subs: ['inbox:frank'] });
      const last = await publish(a, 'inbox:frank', 'waiting');
      const ws = track(await WsTestClient.connect(b.wsUrl, jwt));
      await until(() => ws.pushes.some((p) => p.push === 'sub'), 'the sub push');
      assert.deepEqual(
        ws.pushes.find((p) => p.push === 'sub'),
        { push: 'sub', channel: 'inbox:frank', offset: last.offset, epoch: last.epoch },
      );
      const sio = track(await SioClient.connect(a.url, 'websocket', sioOptions(jwt)));
      await until(() => sio.events('herald.subscribed').length === 1, 'herald.subscribed');
      const sse = track(await RawSse.open(`${a.url}/sse?${streamQuery([], { token: jwt })}`));
      assert.equal(sse.status, 200, sse.body);
      await until(() => sse.events.length > 0, 'herald.connected');
      assert.deepEqual(Object.keys(sse.named('herald.connected')[0].channels), ['inbox:frank']);
      const polled = await poll(b.url, { channels: [], token: jwt, timeout: 0 });
      assert.equal(polled.status, 200, JSON.stringify(polled.body));
      assert.deepEqual(Object.keys(polled.body.channels), ['inbox:frank']);
      await publish(b, 'inbox:frank', 'new');
      await until(() => ws.publications('inbox:frank').length === 1, 'ws');
      await until(() => sio.publications('inbox:frank').length === 1, 'socket.io');
      await until(() => sse.publications().length === 1, 'SSE');
      // The client may take the channel over with a resume (the SDK after a reconnect).
      const resumed = await ws.ok('subscribe', {
        channel: 'inbox:frank',
        since: { offset: last.offset, epoch: last.epoch },
      });
      assert.equal(resumed.recovered, true);
      assert.equal(resumed.publications.length, 1);
      // Without subs and without a channel an SSE request is still refused.
      const none = await RawSse.open(`${a.url}/sse?${streamQuery([], { token: await token({ sub: 'x' }) })}`);
      assert.equal(none.status, 400);
      const forbidden = await api(
        a,
        'GET',
        `/api/channels/inbox:frank/history`,
        undefined,
        await token({ sub: 'y', channels: [] }),
      );
      assert.equal(forbidden.status, 403, 'subs opens the channel to its own token only');
    });

    it('connections lists live connections of every node, by user and channel, in pages; info lists the nodes', async (t) => {
      const hubs = await nodes(t);
      if (hubs === undefined) return;
      const { a, b } = hubs;
      const jwt = await token({ sub: 'gina' });
      const ws = track(await WsTestClient.connect(a.wsUrl, jwt));
      await ws.ok('subscribe', { channel: 'c5-room' });
      const sse = track(await RawSse.open(`${b.url}/sse?${streamQuery(['c5-room', 'c5-lobby'], { token: jwt })}`));
      await until(() => sse.events.length > 0, 'herald.connected');
      track(await SioClient.connect(b.url, 'websocket', sioOptions(jwt)));
      const other = track(await WsTestClient.connect(b.wsUrl, await token({ sub: 'hank' })));
      await other.ok('subscribe', { channel: 'c5-lobby' });

      const mine = await api(a, 'GET', '/api/connections?user=gina');
      assert.equal(mine.status, 200, JSON.stringify(mine.body));
      const list = mine.body.connections as Array<Record<string, unknown>>;
      assert.deepEqual(list.map((c) => c.transport).sort(), ['socketio', 'sse', 'websocket']);
      for (const c of list) {
        assert.equal(c.userId, 'gina');
        assert.equal(typeof c.clientId, 'string');
        assert.equal(typeof c.connectedAt, 'number');
      }
      const bySse = list.find((c) => c.transport === 'sse');
      assert.deepEqual(bySse?.channels, ['c5-room', 'c5-lobby']);
      assert.equal(bySse?.node, b.server.hub.node);
      assert.equal(list.find((c) => c.transport === 'websocket')?.node, a.server.hub.node);
      assert.deepEqual(
        [...list.map((c) => c.clientId as string)],
        [...list.map((c) => c.clientId as string)].sort(),
        'ordered by clientId',
      );

      const inLobby = await api(a, 'GET', '/api/connections?channel=c5-lobby');
      assert.deepEqual(inLobby.body.connections.map((c: { userId: string }) => c.userId).sort(), ['gina', 'hank']);
      // Pages of one, following `next`, give everything once.
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const query = `/api/connections?limit=1${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
        const answer = await api(a, 'GET', query);
        seen.push(...answer.body.connections.map((c: { clientId: string }) => c.clientId));
        cursor = answer.body.next;
        if (cursor === undefined) break;
      }
      const all = (await api(a, 'GET', '/api/connections')).body.connections.map(
        (c: { clientId: string }) => c.clientId,
      );
      assert.deepEqual(seen, all);
      assert.ok(all.length >= 4);
      assert.equal((await api(a, 'GET', '/api/connections?limit=0')).status, 400);
      assert.equal((await api(a, 'GET', '/api/connections', undefined, jwt)).status, 403);
      // The same through the batch.
      const batch = await api(a, 'POST', '/api/batch', {
        commands: [
          { method: 'connections', params: { user: 'hank' } },
          { method: 'presence_stats', params: { channel: 'c5-lobby' } },
        ],
      });
      assert.equal(batch.body.replies[0].result.connections[0].userId, 'hank');
      assert.deepEqual(batch.body.replies[1].result, { clients: 2, users: 2 });

      const stats = await api(a, 'GET', '/api/channels/c5-room/presence-stats');
      assert.deepEqual(stats.body, { clients: 2, users: 1 });

      const info = await api(a, 'GET', '/api/info');
      assert.equal(info.status, 200, JSON.stringify(info.body));
      assert.equal(info.body.node, a.server.hub.node);
      // Every node on the broker answers: this case's two, and those the earlier cases left running.
      const names = info.body.nodes.map((n: { node: string }) => n.node);
      assert.deepEqual(names, [...names].sort(), 'ordered by name');
      const running = new Set(kind === 'memory' ? [a.server.hub.node] : started.map((h) => h.server.hub.node));
      assert.deepEqual(new Set(names), running);
      assert.equal(info.body.missingNodes, undefined);
      const total = info.body.nodes.reduce((sum: number, n: { connections: number }) => sum + n.connections, 0);
      assert.ok(total >= 4, `connections counted on every node: ${total}`);
      const nodeB = info.body.nodes.find((n: { node: string }) => n.node === b.server.hub.node);
      assert.ok(nodeB.transports.sse >= 1 && nodeB.transports.socketio >= 1);
      assert.equal(typeof nodeB.channels, 'number');
    });

    it('deleting history: a resuming subscriber gets recovered: false, a live one loses its position loudly', async (t) => {
      const hubs = await nodes(t);
      if (hubs === undefined) return;
      const { a, b } = hubs;
      const channel = `gone:${kind}`;
      let last = { offset: 0, epoch: '' };
      for (let i = 1; i <= 3; i++) last = await publish(a, channel, i);
      const jwt = await token({ sub: 'ivy' });
      const live = track(await WsTestClient.connect(b.wsUrl, jwt));
      await live.ok('subscribe', { channel, since: { offset: 1, epoch: last.epoch } });
      const es = track(openEventSource(`${b.url}/sse?${streamQuery([channel], { token: jwt })}`));
      await until(() => es.control.some((c) => c.type === 'herald.connected'), 'the EventSource');

      const removed = await api(a, 'DELETE', `/api/channels/${encodeURIComponent(channel)}/history`);
      assert.equal(removed.status, 200, JSON.stringify(removed.body));
      const history = await api(a, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
      assert.deepEqual(history.body.publications, []);
      assert.notEqual(history.body.epoch, last.epoch);
      const first = await publish(a, channel, 'new');
      assert.equal(first.offset, 1);
      // The live WebSocket subscriber: unsub 2500, never the new publication as if it followed.
      await until(() => live.pushes.some((p) => p.push === 'unsub'), 'the unsub push');
      assert.equal(live.pushes.find((p) => p.push === 'unsub').code, 2500);
      assert.deepEqual(live.publications(channel), [], 'the new publication is never taken as following the old ones');
      // The EventSource stream ends with 4007 and resumes from its cursor: recovered false.
      await until(() => es.control.filter((c) => c.type === 'herald.connected').length === 2, 'the SSE reconnect');
      assert.equal(es.control.find((c) => c.type === 'herald.disconnect')?.data.code, 4007);
      assert.equal(es.control.filter((c) => c.type === 'herald.connected')[1]?.data.channels[channel].recovered, false);
      // A WebSocket resume from before, and a poll from an old cursor.
      const resumed = await live.ok('subscribe', { channel, since: last });
      assert.equal(resumed.recovered, false);
      assert.deepEqual(resumed.publications, []);
      const cursor = `h1${cursorEntry(channel, last.offset, last.epoch)}`;
      const polled = await poll(a.url, { channels: [channel], cursor, token: jwt, timeout: 0 });
      assert.equal(polled.status, 200, JSON.stringify(polled.body));
      assert.equal(polled.body.channels[channel].recovered, false);

      assert.equal((await api(a, 'DELETE', '/api/channels/_herald:stats/history')).status, 403);
      assert.equal((await api(a, 'DELETE', `/api/channels/${channel}/history`, undefined, jwt)).status, 403);
    });

    it('the per-user connection cap counts the connections of every node, on every transport', async (t) => {
      const hubs = await nodes(t, { maxConnectionsPerUser: 2 });
      if (hubs === undefined) return;
      const { a, b } = hubs;
      const jwt = await token({ sub: 'capped' });
      const first = track(await WsTestClient.connect(a.wsUrl, jwt));
      const sse = track(await RawSse.open(`${b.url}/sse?${streamQuery(['room'], { token: jwt })}`));
      assert.equal(sse.status, 200);
      await until(() => sse.events.length > 0, 'herald.connected');
      // Two connections, one on each node: the third is refused on either node, on every transport.
      const ws = track(new WsTestClient(b.wsUrl));
      await ws.opened;
      const refused = await ws.call('connect', { token: jwt });
      assert.equal(refused.error?.code, 'rate_limited');
      assert.equal(await ws.closed, 4005);
      const more = await RawSse.open(`${a.url}/sse?${streamQuery(['room'], { token: jwt })}`);
      assert.equal(more.status, 429);
      const polled = await poll(b.url, { channels: ['room'], token: jwt, timeout: 0 });
      assert.equal(polled.status, 429);
      const sio = track(new SioClient(a.url, 'websocket', sioOptions(jwt)));
      await until(() => sio.connectErrors.length > 0, 'the Socket.IO refusal');
      assert.equal(sio.connectErrors[0].data?.code, 'rate_limited');
      // Another user is not affected; one connection less, and the user may connect again.
      track(await WsTestClient.connect(b.wsUrl, await token({ sub: 'free' })));
      first.close();
      const onA = () => a.server.hub.sessionsOf({ user: 'capped' }).filter((x) => x.kind === 'websocket');
      await until(() => onA().length === 0, 'the first connection to end', 10_000);
      track(await WsTestClient.connect(b.wsUrl, jwt));
    });
  });
}
