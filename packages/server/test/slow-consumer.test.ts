/**
 * Guarantee 4 of PROTOCOL.md section 8: a client that stops reading never grows the hub's memory
 * without bound. The hub runs in this process, so `process.memoryUsage().rss` is the hub's RSS
 * (plus the test's small, bounded clients). The assertion is a memory bound, not a timing one.
 * Garbage is collected every few MiB so that RSS shows what the hub retains: a queue that grows
 * without bound would be retained and would show in full (210 MiB against a 150 MB bound).
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { API_KEY, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { RssSampler, collectGarbage } from '../../../test/support/memory.ts';
import { streamQuery } from '../../../test/support/sse.ts';

/** Bytes of `data` per publication and how many: 840 x 256 KiB = 210 MiB streamed at the stalled client. */
const PAYLOAD_BYTES = 256 * 1024;
const COUNT = 840;
/** The stated bound: the hub's RSS may not grow by more than this while it streams 210 MiB. */
const RSS_BOUND_MB = 150;
/** Publications in flight ahead of the healthy reader (the publisher keeps pace with a reader that reads). */
const AHEAD = 6;

/** A subscriber that reads everything and keeps only counts, checking order as it goes. */
class CountingReader {
  count = 0;
  last = 0;
  outOfOrder = 0;
  closeCode: number | undefined;
  #waiters: Array<{ n: number; resolve: () => void }> = [];

  onPublication(offset: number): void {
    if (offset !== this.last + 1) this.outOfOrder++;
    this.last = offset;
    this.count++;
    this.#waiters = this.#waiters.filter((w) => (this.count >= w.n ? (w.resolve(), false) : true));
  }

  reached(n: number): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }
}

async function wsSubscriber(hub: TestHub, channel: string): Promise<WebSocket> {
  const socket = new WebSocket(hub.wsUrl, { maxPayload: 0 });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const answers = new Promise<void>((resolve) => {
    const onMessage = (raw: WebSocket.RawData): void => {
      if (JSON.parse(raw.toString()).id === 2) {
        socket.off('message', onMessage);
        resolve();
      }
    };
    socket.on('message', onMessage);
  });
  socket.send(JSON.stringify({ id: 1, method: 'connect', params: { token: await token() } }));
  socket.send(JSON.stringify({ id: 2, method: 'subscribe', params: { channel } }));
  await answers;
  return socket;
}

/** Publishes COUNT large publications over the API, never more than AHEAD before `reader`. */
async function stream(hub: TestHub, channel: string, reader: CountingReader, rss: RssSampler): Promise<number> {
  const data = 'x'.repeat(PAYLOAD_BYTES - 2);
  const body = JSON.stringify({ channel, data });
  let published = 0;
  let bytes = 0;
  const post = async (): Promise<void> => {
    const response = await fetch(`${hub.url}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body,
    });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    bytes += PAYLOAD_BYTES;
  };
  while (published < COUNT) {
    const batch = Math.min(3, COUNT - published);
    await Promise.all(Array.from({ length: batch }, post));
    published += batch;
    await reader.reached(published - AHEAD);
    rss.sample();
    // Collect garbage now and then so RSS tracks retained memory, not the collector's backlog.
    if (published % 30 === 0) collectGarbage();
  }
  return bytes;
}

async function metric(hub: TestHub, name: string): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? NaN);
}

describe('guarantee 4: slow consumers', () => {
  let hub: TestHub;
  before(async () => {
    // Small history, so the retained publications (10 x 256 KiB) do not blur the measurement.
    hub = await startHub({ maxMessageBytes: PAYLOAD_BYTES, historySize: 10 });
  });
  after(() => hub.close());

  it('disconnects a WebSocket client that stops reading (4004) while a healthy one keeps receiving, in bounded memory', async (t) => {
    const channel = 'slow:ws';
    const healthySocket = await wsSubscriber(hub, channel);
    const healthy = new CountingReader();
    healthySocket.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      if (m.push === 'pub') healthy.onPublication(m.pub.offset);
    });
    healthySocket.on('close', (code) => (healthy.closeCode = code));
    const stalled = await wsSubscriber(hub, channel);
    let stalledCode: number | undefined;
    let stalledDisconnectPushes = 0;
    stalled.on('message', (raw) => {
      if (raw.toString().startsWith('{"push":"disconnect"')) stalledDisconnectPushes++;
    });
    stalled.on('close', (code) => (stalledCode = code));
    // Stop reading: the TCP window fills and the hub's writes back up.
    (stalled as unknown as { _socket: Socket })._socket.pause();
    const disconnectsBefore = await metric(hub, 'herald_slow_consumer_disconnects_total');

    collectGarbage();
    const rss = new RssSampler();
    const bytes = await stream(hub, channel, healthy, rss);
    await healthy.reached(COUNT);
    collectGarbage();
    const report = rss.stop();
    t.diagnostic(
      `streamed ${Math.round(bytes / 1_048_576)} MiB; hub RSS before ${report.beforeMb} MB, peak ${report.peakMb} MB, ` +
        `after ${report.afterMb} MB (growth ${rss.growthMb} MB, bound ${RSS_BOUND_MB} MB, ${report.samples} samples)`,
    );
    assert.ok(rss.growthMb < RSS_BOUND_MB, `RSS grew ${rss.growthMb} MB (bound ${RSS_BOUND_MB} MB)`);

    assert.ok(bytes >= 200 * 1_048_576);
    assert.equal(await metric(hub, 'herald_slow_consumer_disconnects_total'), disconnectsBefore + 1);
    // Read again: the client learns it was dropped (4004, or a cut socket if the close frame was discarded).
    (stalled as unknown as { _socket: Socket })._socket.resume();
    await until(() => stalledCode !== undefined, 'the stalled client to be closed', 15_000);
    t.diagnostic(`stalled client closed with ${stalledCode}, disconnect pushes seen: ${stalledDisconnectPushes}`);
    assert.ok(stalledCode === 4004 || stalledCode === 1006, `close code ${stalledCode}`);
    assert.equal(stalledDisconnectPushes, 0, 'no disconnect push after 4004: the socket cannot take more');
    // The healthy client got everything, in order, and is still connected.
    assert.equal(healthy.count, COUNT);
    assert.equal(healthy.outOfOrder, 0);
    assert.equal(healthy.closeCode, undefined);
    healthySocket.close();
  });

  it('disconnects an SSE client that stops reading while a healthy one keeps receiving, in bounded memory', async (t) => {
    const channel = 'slow:sse';
    const healthySocket = await wsSubscriber(hub, channel);
    const healthy = new CountingReader();
    healthySocket.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      if (m.push === 'pub') healthy.onPublication(m.pub.offset);
    });
    // A raw HTTP client that sends the request and never reads the stream.
    const alice = await token();
    const stalled = connect(hub.port, '127.0.0.1');
    await new Promise((resolve) => stalled.once('connect', resolve));
    let closed = false;
    let received = '';
    stalled.on('close', () => (closed = true));
    stalled.on('error', () => undefined);
    stalled.write(`GET /sse?${streamQuery([channel], { token: alice })} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await until(() => hub.server.hub.stats.connections.sse === 1, 'the SSE session');
    stalled.pause();
    const disconnectsBefore = await metric(hub, 'herald_slow_consumer_disconnects_total');

    collectGarbage();
    const rss = new RssSampler();
    const bytes = await stream(hub, channel, healthy, rss);
    await healthy.reached(COUNT);
    collectGarbage();
    const report = rss.stop();
    t.diagnostic(
      `streamed ${Math.round(bytes / 1_048_576)} MiB; hub RSS before ${report.beforeMb} MB, peak ${report.peakMb} MB, ` +
        `after ${report.afterMb} MB (growth ${rss.growthMb} MB, bound ${RSS_BOUND_MB} MB, ${report.samples} samples)`,
    );
    assert.ok(rss.growthMb < RSS_BOUND_MB, `RSS grew ${rss.growthMb} MB (bound ${RSS_BOUND_MB} MB)`);

    assert.equal(await metric(hub, 'herald_slow_consumer_disconnects_total'), disconnectsBefore + 1);
    assert.equal(hub.server.hub.stats.connections.sse, 0);
    stalled.on('data', (chunk: Buffer) => (received = (received + chunk.toString('latin1')).slice(-4096)));
    stalled.resume();
    await until(() => closed, 'the stalled stream to be closed', 15_000);
    t.diagnostic(`stalled stream ended; herald.disconnect 4004 seen: ${received.includes('"code":4004')}`);
    assert.equal(healthy.count, COUNT);
    assert.equal(healthy.outOfOrder, 0);
    healthySocket.close();
  });

  it('shows 4004 to a client that reads again: WebSocket close 4004 (no push), SSE herald.disconnect 4004', async () => {
    const small = await startHub({ maxQueueBytes: 64 * 1024 });
    try {
      const channel = 'slow:code';
      const stalled = await wsSubscriber(small, channel);
      let stalledCode: number | undefined;
      let pubs = 0;
      let disconnectPushes = 0;
      stalled.on('message', (raw) => {
        const m = JSON.parse(raw.toString());
        if (m.push === 'pub') pubs++;
        if (m.push === 'disconnect') disconnectPushes++;
      });
      stalled.on('close', (code) => (stalledCode = code));
      const sse = connect(small.port, '127.0.0.1');
      await new Promise((resolve) => sse.once('connect', resolve));
      let sseText = '';
      let sseClosed = false;
      sse.on('close', () => (sseClosed = true));
      sse.write(`GET /sse?${streamQuery([channel], { token: await token() })} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      await until(() => small.server.hub.stats.connections.sse === 1, 'the SSE session');
      (stalled as unknown as { _socket: Socket })._socket.pause();
      sse.pause();
      const stats = small.server.hub.stats;
      const data = 's'.repeat(16 * 1024);
      let published = 0;
      for (; published < 5000 && stats.slowConsumerDisconnects < 2; published++) {
        await small.server.hub.publish({ channel, data });
      }
      assert.equal(stats.slowConsumerDisconnects, 2);
      // Read again at once, within the hub's grace for the goodbye.
      sse.on('data', (chunk: Buffer) => (sseText += chunk.toString('latin1')));
      sse.resume();
      (stalled as unknown as { _socket: Socket })._socket.resume();
      await until(() => stalledCode !== undefined && sseClosed, 'both clients to be closed', 15_000);
      assert.equal(stalledCode, 4004);
      assert.equal(disconnectPushes, 0);
      assert.ok(pubs > 0 && pubs < published, `got ${pubs} of ${published} before the close`);
      const goodbye = /event: herald\.disconnect\r?\ndata: (.*)\r?\n/.exec(sseText);
      assert.deepEqual(JSON.parse(goodbye?.[1] ?? 'null'), { code: 4004, reason: 'slow consumer', reconnect: true });
    } finally {
      await small.close();
    }
  });

  it('drops ephemeral publications first, and disconnects only when stored ones back up', async () => {
    const small = await startHub({ maxQueueBytes: 64 * 1024 });
    try {
      const channel = 'slow:ephemeral';
      const stalled = await wsSubscriber(small, channel);
      let stalledCode: number | undefined;
      stalled.on('close', (code) => (stalledCode = code));
      (stalled as unknown as { _socket: Socket })._socket.pause();
      const data = 'e'.repeat(16 * 1024);
      const stats = small.server.hub.stats;
      for (let i = 0; i < 5000 && stats.ephemeralDropped === 0; i++) {
        await small.server.hub.publish({ channel, data, ephemeral: true });
      }
      assert.ok(stats.ephemeralDropped > 0, 'ephemeral publications were dropped');
      for (let i = 0; i < 20; i++) await small.server.hub.publish({ channel, data, ephemeral: true });
      assert.equal(stats.slowConsumerDisconnects, 0, 'ephemeral publications alone never disconnect');
      assert.equal(stats.connections.websocket, 1);
      assert.ok((await metric(small, 'herald_ephemeral_dropped_total')) > 0);
      for (let i = 0; i < 100 && stats.slowConsumerDisconnects === 0; i++) {
        await small.server.hub.publish({ channel, data });
      }
      assert.equal(stats.slowConsumerDisconnects, 1);
      assert.equal(stats.connections.websocket, 0);
      (stalled as unknown as { _socket: Socket })._socket.resume();
      await until(() => stalledCode !== undefined, 'the stalled client to be closed', 15_000);
    } finally {
      await small.close();
    }
  });
});
