/** Health, readiness, metrics, heartbeats and the graceful drain of the hub library (PROTOCOL.md sections 1, 5, 6). */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { api, publish, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { poll } from '../../../test/support/poll.ts';
import { RawSse, streamQuery } from '../../../test/support/sse.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

/** Prometheus text to `{ 'name{labels}': value }`. */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

async function metrics(hub: TestHub): Promise<Map<string, number>> {
  return parseMetrics(await (await fetch(`${hub.url}/metrics`)).text());
}

const upgradeStatus = (url: string): Promise<number> =>
  new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.once('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('error', () => undefined);
  });

describe('health and readiness', () => {
  it('answers /healthz 200 and /readyz 200 while accepting, /readyz 503 when not, refusing new clients with 503', async () => {
    const hub = await startHub();
    try {
      const health = await api(hub, 'GET', '/healthz');
      assert.equal(health.status, 200);
      assert.deepEqual(health.body, { status: 'ok' });
      const ready = await api(hub, 'GET', '/readyz');
      assert.equal(ready.status, 200);
      const alice = await token();
      const connected = await WsTestClient.connect(hub.wsUrl, alice);

      hub.server.hub.stopAccepting();
      const notReady = await api(hub, 'GET', '/readyz');
      assert.equal(notReady.status, 503);
      assert.equal(notReady.body.error.code, 'not_ready');
      assert.equal((await api(hub, 'GET', '/healthz')).status, 200, 'alive while not ready');
      assert.equal(await upgradeStatus(hub.wsUrl), 503);
      const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['r:1'], { token: alice })}`);
      assert.equal(sse.status, 503);
      assert.equal(sse.json().error.code, 'not_ready');
      const polled = await poll(hub.url, { channels: ['r:1'], token: alice, timeout: 0 });
      assert.equal(polled.status, 503);
      assert.equal(polled.body.error.code, 'not_ready');
      // Existing connections go on.
      assert.deepEqual(await connected.ok('ping'), {});
      connected.close();
    } finally {
      await hub.close();
    }
  });
});

describe('metrics', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('serves the documented Prometheus metrics, with the transport label', async () => {
    const response = await fetch(`${hub.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await response.text();
    for (const name of [
      'herald_connections',
      'herald_publications_total',
      'herald_deliveries_total',
      'herald_slow_consumer_disconnects_total',
      'herald_auth_failures_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} (gauge|counter)$`, 'm'), name);
    }
    const values = parseMetrics(text);
    for (const transport of ['websocket', 'sse', 'poll', 'socketio']) {
      assert.ok(values.has(`herald_connections{transport="${transport}"}`), transport);
      assert.ok(values.has(`herald_deliveries_total{transport="${transport}"}`), transport);
    }
  });

  it('counts connections, publications, deliveries and auth failures as they happen', async () => {
    const before = await metrics(hub);
    const alice = await token();
    const ws = await WsTestClient.connect(hub.wsUrl, alice);
    await ws.ok('subscribe', { channel: 'metrics:1' });
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['metrics:1'], { token: alice })}`);
    await until(() => sse.events.length >= 1, 'herald.connected');
    const during = await metrics(hub);
    assert.equal(during.get('herald_connections{transport="websocket"}'), 1);
    assert.equal(during.get('herald_connections{transport="sse"}'), 1);
    const start = await poll(hub.url, { channels: ['metrics:1'], token: alice, timeout: 0 });
    await publish(hub, 'metrics:1', 1);
    await publish(hub, 'metrics:1', 2);
    await until(() => ws.publications().length === 2 && sse.publications().length === 2, 'deliveries');
    const polled = await poll(hub.url, { channels: ['metrics:1'], token: alice, cursor: start.body.cursor });
    assert.equal(polled.body.publications.length, 2);
    const bad = new WsTestClient(hub.wsUrl);
    await bad.opened;
    bad.socket.send('{"id":1,"method":"connect","params":{"token":"bad"}}');
    await bad.closed;
    const afterwards = await metrics(hub);
    const grew = (key: string): number => (afterwards.get(key) ?? NaN) - (before.get(key) ?? 0);
    assert.equal(grew('herald_publications_total'), 2);
    assert.equal(grew('herald_deliveries_total{transport="websocket"}'), 2);
    assert.equal(grew('herald_deliveries_total{transport="sse"}'), 2);
    assert.equal(grew('herald_deliveries_total{transport="poll"}'), 0, 'replayed from history, not delivered live');
    assert.equal(grew('herald_auth_failures_total'), 1);
    ws.close();
    sse.close();
    await until(() => hub.server.hub.sessionCount === 0, 'the clients to go');
    const closed = await metrics(hub);
    assert.equal(closed.get('herald_connections{transport="websocket"}'), 0);
    assert.equal(closed.get('herald_connections{transport="sse"}'), 0);
  });
});

describe('heartbeats', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ pingIntervalSeconds: 1, ssePingSeconds: 1 });
  });
  after(() => hub.close());

  it('pings WebSocket clients every pingInterval and drops a peer that stops answering', async () => {
    const alice = await token();
    const healthy = await WsTestClient.connect(hub.wsUrl, alice);
    const deaf = await WsTestClient.connect(hub.wsUrl, alice, { autoPong: false });
    let healthyPings = 0;
    let deafPings = 0;
    healthy.socket.on('ping', () => healthyPings++);
    deaf.socket.on('ping', () => deafPings++);
    // The silent peer is ended after one unanswered ping; it sends nothing else that would count as alive.
    await until(() => deaf.closeCode !== undefined, 'the silent peer to be dropped', 15_000);
    assert.ok(deafPings >= 1, 'it was pinged');
    assert.equal(deaf.closeCode, 1006, 'terminated: a dead peer cannot take a close handshake');
    // The answering client was pinged as often and is still connected and served.
    await until(() => healthyPings >= deafPings + 1, 'another ping to the healthy client', 15_000);
    assert.equal(healthy.closeCode, undefined);
    assert.deepEqual(await healthy.ok('ping'), {});
    await until(() => hub.server.hub.stats.connections.websocket === 1, 'the dropped session to end');
    healthy.close();
  });

  it('sends a due ping with the next publication, and the client reads both', async () => {
    const subscriber = await WsTestClient.connect(hub.wsUrl, await token());
    await subscriber.ok('subscribe', { channel: 'hb:pub' });
    const seen: string[] = [];
    subscriber.socket.on('ping', () => seen.push('ping'));
    subscriber.socket.on('message', (data) => {
      if (String(data).includes('"pub"')) seen.push('pub');
    });
    // What arrives on the wire: a ping that rode on a publication ends the same write (and read).
    let riding = 0;
    const tcp = (subscriber.socket as unknown as { _socket: Socket })._socket;
    tcp.on('data', (chunk: Buffer) => {
      const endsWithPing = chunk.length > 2 && chunk[chunk.length - 2] === 0x89 && chunk[chunk.length - 1] === 0;
      if (endsWithPing && chunk.includes('"pub"')) riding++;
    });
    // A publication every 50 ms: each due ping (one a second) finds one to ride on within its tick.
    let sent = 0;
    while (seen.filter((e) => e === 'ping').length < 3 && sent < 200) {
      await publish(hub, 'hb:pub', ++sent);
      await sleep(50);
    }
    await until(() => subscriber.publications('hb:pub').length === sent, 'every publication');
    assert.ok(seen.filter((e) => e === 'ping').length >= 3, `pinged: ${seen.join(' ')}`);
    assert.ok(riding >= 2, `pings in the same write as a publication: ${riding}`);
    assert.deepEqual(
      subscriber.publications('hb:pub').map((p) => p.data),
      Array.from({ length: sent }, (_, i) => i + 1),
      'every publication, in order, the pings between them',
    );
    // Answered pings keep it alive: it is still connected after several intervals.
    assert.equal(subscriber.closeCode, undefined);
    subscriber.close();
  });

  it('sends SSE `: ping` comments at least every ssePingSeconds', async () => {
    const stream = await RawSse.open(`${hub.url}/sse?${streamQuery(['hb:1'], { token: await token() })}`);
    await until(() => stream.comments.filter((c) => c === 'ping').length >= 2, 'two ping comments', 15_000);
    stream.close();
  });
});

describe('graceful drain (library)', () => {
  it('tells every client to reconnect elsewhere, answers /readyz 503 meanwhile, then stops', async () => {
    const hub = await startHub();
    const alice = await token();
    const ws = await WsTestClient.connect(hub.wsUrl, alice);
    await ws.ok('subscribe', { channel: 'drain:1' });
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['drain:1'], { token: alice })}`);
    await until(() => sse.events.length >= 1, 'herald.connected');
    const start = await poll(hub.url, { channels: ['drain:1'], token: alice, timeout: 0 });
    const waitingPoll = poll(hub.url, { channels: ['drain:1'], token: alice, cursor: start.body.cursor, timeout: 30 });
    // A client that stopped reading keeps the drain waiting for its goodbye (bounded).
    const stalled = await WsTestClient.connect(hub.wsUrl, alice);
    const stalledSocket = (stalled.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    stalledSocket.pause();
    await until(() => hub.server.hub.sessionCount >= 4, 'every session');

    const drained = hub.server.drain();
    await until(() => ws.closeCode !== undefined, 'the WebSocket close');
    const readyDuring = await api(hub, 'GET', '/readyz');
    assert.equal(readyDuring.status, 503);
    assert.equal(await upgradeStatus(hub.wsUrl), 503, 'no new connections while draining');
    assert.equal(ws.closeCode, 1001);
    assert.deepEqual(ws.pushes.at(-1), { push: 'disconnect', code: 1001, reason: 'hub going away', reconnect: true });
    await sse.ended;
    assert.deepEqual(sse.named('herald.disconnect'), [{ code: 1001, reason: 'hub going away', reconnect: true }]);
    const answered = await waitingPoll;
    assert.equal(answered.status, 200);
    assert.deepEqual(answered.body.publications, []);
    await drained;
    await assert.rejects(fetch(`${hub.url}/healthz`), 'the listener is closed after the drain');
    stalledSocket.resume();
    await stalled.closed;
  });

  it('with readinessMs, keeps answering /readyz 503 that long even when the clients left at once', async () => {
    const hub = await startHub();
    const ws = await WsTestClient.connect(hub.wsUrl, await token());
    const began = Date.now();
    const drained = hub.server.drain({ readinessMs: 2_000 });
    await ws.closed;
    // The only client is gone; without the option the listener closes about 50 ms after this.
    await sleep(300);
    const readyLater = await api(hub, 'GET', '/readyz');
    assert.equal(readyLater.status, 503, 'still answering, not ready, after the clients left');
    await drained;
    assert.ok(Date.now() - began >= 2_000, 'the drain lasted at least readinessMs');
    await assert.rejects(fetch(`${hub.url}/healthz`), 'the listener is closed after the drain');
  });
});
