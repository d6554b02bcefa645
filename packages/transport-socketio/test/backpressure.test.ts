/**
 * A Socket.IO client whose transport stops reading cannot grow the hub's memory without bound:
 * Engine.IO's write buffer and the socket's are counted against the hub's queue cap, and past it
 * the client is disconnected as a slow consumer (4004). The stalled clients speak Engine.IO and
 * Socket.IO by hand over real sockets, so that they can stop reading exactly where a real one would.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { token, until } from '../../../test/support/hub.ts';
import { startSioHub, type SioHub } from './support.ts';

const PAYLOAD = 'x'.repeat(60_000);
/** Publish at most this much while waiting for the disconnect: a bound, not a threshold. */
const MAX_STREAMED_BYTES = 64 * 1024 * 1024;

let hub: SioHub;
before(async () => {
  // A short history: the streamed megabytes must not stay in the broker and blur the RSS figure.
  hub = await startSioHub({ historySize: 8 });
});
after(() => hub.close());

const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(1)} MiB`;

/** What the hub holds per session, for the message of a failed assertion. */
function sessionsState(): string {
  return JSON.stringify(
    hub.server.hub.sessions().map((s) => ({
      transport: s.kind,
      subscriptions: [...s.subscriptions.values()].map((sub) => ({
        channel: sub.channel,
        offset: sub.offset,
      })),
    })),
  );
}

/** Publishes in-process until `gone()` or the bound; returns the bytes published. */
async function stream(channel: string, gone: () => boolean): Promise<number> {
  let bytes = 0;
  while (!gone() && bytes < MAX_STREAMED_BYTES) {
    await hub.server.hub.publish({ channel, data: PAYLOAD });
    bytes += PAYLOAD.length;
    // Let sockets, timers and the engine run between publications, as they would in production.
    await new Promise((r) => setImmediate(r));
  }
  return bytes;
}

describe('a stalled Socket.IO client', () => {
  it('over WebSocket: disconnected as a slow consumer, memory bounded', async (t) => {
    const stats = hub.server.hub.stats;
    const slowBefore = stats.slowConsumerDisconnects;
    const ws = new WebSocket(`ws://127.0.0.1:${hub.port}/socket.io/?EIO=4&transport=websocket`);
    const frames: string[] = [];
    ws.on('message', (data) => frames.push(data.toString()));
    ws.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    await until(() => frames.some((f) => f.startsWith('0{')), 'the Engine.IO open packet');
    ws.send(`40${JSON.stringify({ token: await token() })}`);
    await until(() => frames.some((f) => f.startsWith('40{')), 'the Socket.IO connect');
    ws.send('420["subscribe",{"channel":"slow:ws"}]');
    await until(() => frames.some((f) => f.startsWith('430[{"ok":true')), 'the subscribe ack');
    assert.equal(stats.connections.socketio, 1);

    // Stop reading: the kernel buffers fill, then Node's, then Engine.IO's write buffer.
    ws.pause();
    const rssBefore = process.memoryUsage().rss;
    const streamed = await stream('slow:ws', () => stats.slowConsumerDisconnects > slowBefore);
    const rssAfter = process.memoryUsage().rss;
    t.diagnostic(`streamed ${mb(streamed)} before the disconnect; RSS ${mb(rssBefore)} -> ${mb(rssAfter)}`);
    assert.equal(stats.slowConsumerDisconnects, slowBefore + 1, `not disconnected: ${sessionsState()}`);
    await until(() => stats.connections.socketio === 0, 'the session to end');
    await until(() => hub.socketIo.io.engine.clientsCount === 0, 'the Engine.IO connection to go');
    ws.resume();
    await closed;
  });

  it('over long-polling: disconnected as a slow consumer, memory bounded', async (t) => {
    const stats = hub.server.hub.stats;
    const slowBefore = stats.slowConsumerDisconnects;
    const base = `${hub.url}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const sid = JSON.parse(open.slice(1)).sid as string;
    const url = `${base}&sid=${sid}`;
    const post = async (body: string): Promise<void> => {
      const response = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
      assert.equal(await response.text(), 'ok');
    };
    await post(`40${JSON.stringify({ token: await token() })}`);
    assert.match(await (await fetch(url)).text(), /^40\{"sid"/);
    await post('420["subscribe",{"channel":"slow:poll"}]');
    let answers = '';
    while (!answers.includes('430[{"ok":true')) answers += await (await fetch(url)).text();
    assert.equal(stats.connections.socketio, 1);

    // A long-poll GET whose response is never read.
    const stalled: TcpSocket = tcpConnect(hub.port, '127.0.0.1');
    stalled.on('error', () => undefined);
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    stalled.write(`GET /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    stalled.pause();
    const rssBefore = process.memoryUsage().rss;
    const streamed = await stream('slow:poll', () => stats.slowConsumerDisconnects > slowBefore);
    const rssAfter = process.memoryUsage().rss;
    t.diagnostic(`streamed ${mb(streamed)} before the disconnect; RSS ${mb(rssBefore)} -> ${mb(rssAfter)}`);
    assert.equal(stats.slowConsumerDisconnects, slowBefore + 1, `not disconnected: ${sessionsState()}`);
    await until(() => stats.connections.socketio === 0, 'the session to end');
    await until(() => hub.socketIo.io.engine.clientsCount === 0, 'the Engine.IO connection to go');
    // The session is gone: a poll for it is refused.
    const refused = await fetch(url);
    assert.equal(refused.status, 400);
    stalled.destroy();
  });
});
