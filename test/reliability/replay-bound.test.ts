/**
 * One bound for answers and replays (issue 12): a client resuming from far back, over a history
 * much larger than the queue bound, makes the hub hold at most about one page of it at a time, on
 * every transport, however slowly it reads; and it still gets every publication exactly once, in
 * order. The hub runs in this process: RSS growth while the client holds still is the hub's.
 */
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { attachSocketIo } from '@herald/transport-socketio';
import WebSocket from 'ws';
import { startHub, token, until, type TestHub } from '../support/hub.ts';
import { RssSampler, collectGarbage } from '../support/memory.ts';
import { recordFigures } from './support/figures.ts';

const COUNT = 400;
const PAYLOAD = 'r'.repeat(60_000);
/** History of 400 x 60 KB = 24 MB; the queue bound is 1 MiB. */
const MAX_QUEUE_BYTES = 1_048_576;
/** RSS growth allowed while a stalled client resumes over the whole history (a whole-history answer costs 48 MB+). */
const RSS_BOUND_MB = 16;
const STALL_MS = 1500;

let hub: TestHub;
let epoch = '';

before(async () => {
  hub = await startHub({ maxMessageBytes: 65_536, historySize: COUNT, maxQueueBytes: MAX_QUEUE_BYTES });
  attachSocketIo(hub.server);
  for (let i = 0; i < COUNT; i++) {
    const answer = await hub.server.hub.publish({ channel: 'replay:big', data: { i, pad: PAYLOAD } });
    epoch = (answer as { epoch: string }).epoch;
  }
});
after(() => hub.close());

/** Checks what a client received: offsets 1..COUNT, once each, in order. */
function assertExactlyOnce(offsets: readonly number[], transport: string): void {
  assert.equal(offsets.length, COUNT, `${transport}: ${offsets.length} received`);
  offsets.forEach((offset, i) => assert.equal(offset, i + 1, `${transport}: position ${i}`));
}

/** RSS growth while a client holds still; `stall` resolves once the hub is given time to fill its buffers. */
async function stalledGrowth(): Promise<{ peakMb: number }> {
  collectGarbage();
  const rss = new RssSampler(20);
  await new Promise((r) => setTimeout(r, STALL_MS));
  collectGarbage();
  rss.sample();
  const report = rss.stop();
  return { peakMb: Math.round((report.peakMb - report.beforeMb) * 10) / 10 };
}

describe('a replay far larger than the queue bound', () => {
  it('WebSocket: the answer carries a first page, the rest follows as pushes, paced by the client', async (t) => {
    const ws = new WebSocket(hub.wsUrl, { maxPayload: 0 });
    await new Promise((resolve) => ws.once('open', resolve));
    const offsets: number[] = [];
    let answerPage = 0;
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.id === 2) {
        answerPage = message.result.publications.length;
        for (const pub of message.result.publications) offsets.push(pub.offset);
      } else if (message.push === 'pub') offsets.push(message.pub.offset);
    });
    ws.send(JSON.stringify({ id: 1, method: 'connect', params: { token: await token() } }));
    ws.send(
      JSON.stringify({ id: 2, method: 'subscribe', params: { channel: 'replay:big', since: { offset: 0, epoch } } }),
    );
    ws.pause();
    const growth = await stalledGrowth();
    ws.resume();
    await until(() => offsets.length >= COUNT, 'the whole replay', 30_000);
    ws.close();
    recordFigures(t, 'replay-bound-websocket', { historyMb: 24, answerPage, rssGrowthWhileStalledMb: growth.peakMb });
    assertExactlyOnce(offsets, 'WebSocket');
    assert.ok(answerPage > 0 && answerPage < COUNT, `the answer holds one page (${answerPage})`);
    assert.ok(growth.peakMb < RSS_BOUND_MB, `RSS grew ${growth.peakMb} MB`);
  });

  it('SSE: the stream replays page by page as the client reads', async (t) => {
    const offsets: number[] = [];
    let buffer = '';
    const bearer = await token();
    const authorized = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(`${hub.url}/sse?channel=replay:big`, {
        headers: { 'last-event-id': `h1,replay:big~0~${epoch}`, authorization: `Bearer ${bearer}` },
      });
      req.on('response', resolve).on('error', reject).end();
    });
    assert.equal(authorized.statusCode, 200);
    authorized.setEncoding('utf8');
    authorized.pause();
    const growth = await stalledGrowth();
    authorized.on('data', (chunk: string) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (data !== undefined && !block.includes('event: herald.')) offsets.push(JSON.parse(data.slice(6)).offset);
      }
    });
    authorized.resume();
    await until(() => offsets.length >= COUNT, 'the whole replay', 30_000);
    authorized.destroy();
    recordFigures(t, 'replay-bound-sse', { historyMb: 24, rssGrowthWhileStalledMb: growth.peakMb });
    assertExactlyOnce(offsets, 'SSE');
    assert.ok(growth.peakMb < RSS_BOUND_MB, `RSS grew ${growth.peakMb} MB`);
  });

  it('long-poll: each answer holds at most about the bound; the cursor continues', async (t) => {
    const offsets: number[] = [];
    const sizes: number[] = [];
    const bearer = await token();
    let cursor = `h1,replay:big~0~${epoch}`;
    for (let i = 0; i < COUNT && offsets.length < COUNT; i++) {
      const response = await fetch(
        `${hub.url}/poll?channel=replay:big&timeout=0&cursor=${encodeURIComponent(cursor)}`,
        {
          headers: { authorization: `Bearer ${bearer}` },
        },
      );
      const text = await response.text();
      const body = JSON.parse(text);
      sizes.push(text.length);
      for (const pub of body.publications) offsets.push(pub.offset);
      cursor = body.cursor;
    }
    recordFigures(t, 'replay-bound-poll', { answers: sizes.length, largestAnswerBytes: Math.max(...sizes) });
    assertExactlyOnce(offsets, 'poll');
    assert.ok(sizes.length > 1, 'several answers');
    assert.ok(Math.max(...sizes) <= MAX_QUEUE_BYTES + 70_000, `largest answer ${Math.max(...sizes)} bytes`);
  });

  it('Socket.IO: the ack, then the replay as events, paced by the client', async (t) => {
    const ws = new WebSocket(`ws://127.0.0.1:${hub.port}/socket.io/?EIO=4&transport=websocket`, { maxPayload: 0 });
    const offsets: number[] = [];
    const frames: string[] = [];
    ws.on('message', (raw) => {
      const text = raw.toString();
      if (text.startsWith('42["message",')) offsets.push(JSON.parse(text.slice(2))[1].offset);
      else frames.push(text);
      if (text === '2') ws.send('3'); // Engine.IO ping
    });
    await until(() => frames.some((f) => f.startsWith('0{')), 'the Engine.IO open packet');
    ws.send(`40${JSON.stringify({ token: await token() })}`);
    await until(() => frames.some((f) => f.startsWith('40{')), 'the Socket.IO connect');
    ws.send(`420["subscribe",${JSON.stringify({ channel: 'replay:big', since: { offset: 0, epoch } })}]`);
    ws.pause();
    const growth = await stalledGrowth();
    ws.resume();
    await until(() => offsets.length >= COUNT, 'the whole replay', 30_000);
    ws.close();
    recordFigures(t, 'replay-bound-socketio', { historyMb: 24, rssGrowthWhileStalledMb: growth.peakMb });
    assertExactlyOnce(offsets, 'Socket.IO');
    assert.ok(growth.peakMb < RSS_BOUND_MB, `RSS grew ${growth.peakMb} MB`);
  });
});
