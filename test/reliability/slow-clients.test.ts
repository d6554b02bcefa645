/**
 * Slow clients (PROTOCOL.md section 8, guarantee 4): WebSocket, SSE and (when the package is
 * there) Socket.IO clients that stop reading while the hub fans out hundreds of MB. The hub's
 * memory must stay bounded, each stalled client must be disconnected as a slow consumer (4004 or
 * the transport's equivalent), and a healthy subscriber of the same channel must get everything.
 * Also: a client that keeps asking (history) without reading its answers.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { API_KEY, token, until } from '../support/hub.ts';
import { openEventSource } from '../support/sse.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { startChildHub, MiB, mib, type ChildHub } from './support/child-hub.ts';
import { envInt, pool, recordFigures } from './support/figures.ts';
import { Opcode, RawWs, startsWithText } from './support/raw-ws.ts';
import { Witness } from './support/witness.ts';

const PAYLOAD = 'x'.repeat(60_000);
/** Publications streamed per run: 680 x 60 KB = 40 MB, offered to every subscriber. */
const PUBLICATIONS = envInt('HERALD_SLOW_PUBLICATIONS', 680);
const SLOW_WS = 10;
const SLOW_SSE = 10;
/** Peak RSS bound for the hub (idle: about 100 MiB under tsx; each stalled client may hold 1 MiB + one publication). */
const RSS_BOUND = 300 * MiB;

async function publishBig(url: string, channel: string, count: number): Promise<number> {
  let acked = 0;
  await pool(
    Array.from({ length: count }, (_, i) => i),
    4,
    async () => {
      const r = await fetch(`${url}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel, data: PAYLOAD }),
      });
      await r.arrayBuffer();
      if (r.status === 200) acked++;
    },
  );
  return acked;
}

/** An SSE request over raw TCP whose response is never read once the stream has started. */
async function stalledSse(port: number, channel: string, jwt: string): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET /sse?channel=${channel}&token=${jwt} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  let head = '';
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer): void => {
      head += d.toString();
      if (head.includes('herald.connected')) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
  });
  socket.pause();
  return socket;
}

describe('slow clients', () => {
  let hub: ChildHub;
  before(async () => {
    // A short history, so streamed megabytes do not stay in the broker and blur the RSS figure.
    hub = await startChildHub({ options: { historySize: 8 }, socketio: true });
  });
  after(() => hub.kill());

  it(`disconnects ${SLOW_WS} WebSocket and ${SLOW_SSE} SSE clients that stop reading; memory bounded; the healthy get everything`, async (t) => {
    const channel = 'slow:feed';
    const jwt = await token({ sub: 'slow', channels: ['slow:*', 'witness'] });
    const witness = await Witness.start(hub);
    const healthy = await WsTestClient.connect(hub.wsUrl, jwt);
    await healthy.ok('subscribe', { channel });
    const slowWs: RawWs[] = [];
    for (let i = 0; i < SLOW_WS; i++) {
      const ws = await RawWs.open(hub.port);
      ws.answerPings = false;
      ws.command(1, 'connect', { token: jwt });
      ws.command(2, 'subscribe', { channel });
      await ws.waitFor((f) => f.opcode === Opcode.Text && startsWithText(f.payload, '{"id":2'));
      ws.socket.pause();
      slowWs.push(ws);
    }
    const slowSse = await Promise.all(Array.from({ length: SLOW_SSE }, () => stalledSse(hub.port, channel, jwt)));
    const before = await hub.stats();
    const started = Date.now();
    let disconnectedAfterMs: number | undefined;
    let peakDuring = 0;
    const watcher = setInterval(() => {
      peakDuring = Math.max(peakDuring, hub.rss().rss);
      void hub.stats().then((s) => {
        if (
          disconnectedAfterMs === undefined &&
          s.slowConsumerDisconnects - before.slowConsumerDisconnects >= SLOW_WS + SLOW_SSE
        ) {
          disconnectedAfterMs = Date.now() - started;
        }
      });
    }, 50);
    const acked = await publishBig(hub.url, channel, PUBLICATIONS);
    await until(() => disconnectedAfterMs !== undefined, 'every slow client to be disconnected', 60_000).catch(
      () => undefined,
    );
    clearInterval(watcher);
    const after = await hub.stats();
    await until(() => healthy.publications(channel).length >= acked, 'the healthy client to get everything', 60_000);
    const offsets = healthy.publications(channel).map((p) => p.offset);
    const report = await witness.finish();

    // Read what the stalled clients were sent: the WebSocket ones end with close 4004 (if the
    // frame made it before the hub cut the socket), the SSE ones with herald.disconnect 4004.
    const wsCodes = await Promise.all(
      slowWs.map(async (ws) => {
        ws.socket.resume();
        return (await ws.closeCodeOf(10_000)) ?? 'cut';
      }),
    );
    const sseEnds = await Promise.all(
      slowSse.map(
        (s) =>
          new Promise<string>((resolve) => {
            let tail = '';
            s.on('data', (d: Buffer) => (tail = (tail + d.toString('latin1')).slice(-400)));
            s.once('close', () => resolve(/herald\.disconnect\ndata: \{"code":4004/.test(tail) ? '4004' : 'cut'));
            setTimeout(() => resolve('open'), 10_000).unref();
            s.resume();
          }),
      ),
    );
    const { peak } = hub.rss();
    const figures = {
      publications: acked,
      publishedMiB: +((acked * PAYLOAD.length) / MiB).toFixed(1),
      offeredMiB: +((acked * PAYLOAD.length * (SLOW_WS + SLOW_SSE + 1)) / MiB).toFixed(0),
      allSlowDisconnectedAfterMs: disconnectedAfterMs,
      slowConsumerDisconnects: after.slowConsumerDisconnects - before.slowConsumerDisconnects,
      wsCloseCodes: tally(wsCodes),
      sseEnds: tally(sseEnds),
      peakRssMiB: Math.round(Math.max(peak, peakDuring) / MiB),
      healthyReceived: offsets.length,
      witness: report,
    };
    recordFigures(t, 'slow-clients', figures);
    healthy.close();
    assert.equal(hub.exitStatus, undefined);
    assert.equal(
      figures.slowConsumerDisconnects,
      SLOW_WS + SLOW_SSE,
      'every stalled client was disconnected as a slow consumer',
    );
    assert.equal(after.connections.websocket, 1 + 1, 'only the healthy WebSocket client and the witness remain');
    assert.equal(after.connections.sse, 1, 'only the SSE witness remains');
    assert.deepEqual(
      offsets,
      Array.from({ length: offsets.length }, (_, i) => (offsets[0] as number) + i),
      'healthy: gapless, in order',
    );
    assert.equal(offsets.length, acked);
    assert.ok(
      wsCodes.every((c) => c === 4004 || c === 'cut'),
      `WebSocket slow clients: ${JSON.stringify(wsCodes)}`,
    );
    assert.ok(
      sseEnds.every((c) => c === '4004' || c === 'cut'),
      `SSE slow clients: ${JSON.stringify(sseEnds)}`,
    );
    assert.ok(figures.peakRssMiB * MiB < RSS_BOUND, `peak RSS ${figures.peakRssMiB} MiB over ${mib(RSS_BOUND)}`);
  });

  it('tells a stalled client why (WebSocket close 4004, SSE herald.disconnect 4004) when it reads again in time', async (t) => {
    const channel = 'slow:told';
    const jwt = await token({ sub: 'told', channels: ['slow:*'] });
    const ws = await RawWs.open(hub.port);
    ws.answerPings = false;
    ws.command(1, 'connect', { token: jwt });
    ws.command(2, 'subscribe', { channel });
    await ws.waitFor((f) => f.opcode === Opcode.Text && startsWithText(f.payload, '{"id":2'));
    ws.socket.pause();
    const sse = await stalledSse(hub.port, channel, jwt);
    let sseTail = '';
    const sseEnded = new Promise<void>((resolve) => sse.once('close', () => resolve()));
    const before = await hub.stats();
    let published = 0;
    // Batches of 10, checking after each: the client starts reading again right after the cut,
    // well within the 2 s the hub gives a closing socket.
    while (published < PUBLICATIONS * 2) {
      published += await publishBig(hub.url, channel, 10);
      if ((await hub.stats()).slowConsumerDisconnects >= before.slowConsumerDisconnects + 2) break;
    }
    sse.on('data', (d: Buffer) => (sseTail = (sseTail + d.toString('latin1')).slice(-400)));
    sse.resume();
    ws.socket.resume();
    const code = await ws.closeCodeOf(10_000);
    await Promise.race([sseEnded, new Promise((r) => setTimeout(r, 10_000).unref())]);
    sse.destroy();
    recordFigures(t, 'slow-clients-told', {
      publishedMiB: +((published * PAYLOAD.length) / MiB).toFixed(1),
      wsCloseCode: code,
    });
    assert.equal(code, 4004);
    assert.match(sseTail, /event: herald\.disconnect\ndata: \{"code":4004,"reason":"slow consumer","reconnect":true\}/);
  });

  it('disconnects a Socket.IO client that stops reading (when @herald/transport-socketio provides attachSocketIo)', async (t) => {
    if (!hub.socketio) {
      t.skip('@herald/transport-socketio does not export attachSocketIo yet');
      return;
    }
    const channel = 'slow:sio';
    const before = await hub.stats();
    const ws = new WebSocket(`ws://127.0.0.1:${hub.port}/socket.io/?EIO=4&transport=websocket`);
    const frames: string[] = [];
    ws.on('message', (data) => frames.push(data.toString()));
    ws.on('error', () => undefined);
    await until(() => frames.some((f) => f.startsWith('0{')), 'the Engine.IO open packet', 10_000);
    ws.send(`40${JSON.stringify({ token: await token({ sub: 'sio', channels: ['slow:*'] }) })}`);
    await until(() => frames.some((f) => f.startsWith('40{')), 'the Socket.IO connect', 10_000);
    ws.send(`420["subscribe",{"channel":"${channel}"}]`);
    await until(() => frames.some((f) => f.startsWith('430[{"ok":true')), 'the subscribe ack', 10_000);
    ws.pause();
    const started = Date.now();
    let published = 0;
    let disconnectedAfterMs: number | undefined;
    while (published < PUBLICATIONS * 4) {
      published += await publishBig(hub.url, channel, 40);
      const s = await hub.stats();
      if (s.slowConsumerDisconnects > before.slowConsumerDisconnects) {
        disconnectedAfterMs = Date.now() - started;
        break;
      }
    }
    const after = await hub.stats();
    recordFigures(t, 'slow-clients-socketio', {
      publishedMiB: +((published * PAYLOAD.length) / MiB).toFixed(1),
      disconnectedAfterMs,
      peakRssMiB: Math.round(hub.rss().peak / MiB),
    });
    ws.terminate();
    assert.equal(after.slowConsumerDisconnects, before.slowConsumerDisconnects + 1);
    assert.ok(hub.rss().peak < RSS_BOUND);
  });

  it('bounds what a non-reading SSE client resuming from far back costs (the replay obeys the queue bound)', async (t) => {
    // Its own hub: a long history of big publications, and ten clients that ask for all of it.
    const deep = await startChildHub({ options: { historySize: 400, sseRetryMs: 50 } });
    try {
      const channel = 'slow:replay';
      await publishBig(deep.url, channel, 400); // 400 x 60 KB = 23 MiB retained
      const top = (await (
        await fetch(`${deep.url}/api/channels/${channel}/history?limit=0`, {
          headers: { authorization: `Bearer ${API_KEY}` },
        })
      ).json()) as { epoch: string };
      const jwt = await token({ sub: 'replayer', channels: ['slow:*'] });
      const rssBefore = deep.rss().rss;
      const sockets = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const socket = connect(deep.port, '127.0.0.1');
          socket.on('error', () => undefined);
          await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
          socket.write(
            `GET /sse?channel=${channel}&token=${jwt} HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: h1,${channel}~0~${top.epoch}\r\n\r\n`,
          );
          socket.pause();
          return socket;
        }),
      );
      await new Promise((r) => setTimeout(r, 2_000));
      const grew = deep.rss().peak - rssBefore;
      const stats = await deep.stats();
      recordFigures(t, 'slow-sse-replay', {
        clients: 10,
        replayMiBEach: +((400 * PAYLOAD.length) / MiB).toFixed(1),
        rssGrowthMiB: +(grew / MiB).toFixed(1),
        slowConsumerDisconnects: stats.slowConsumerDisconnects,
      });
      // Without the bound, each client would pin its whole 23 MiB replay in the hub (230 MiB).
      assert.ok(grew < 100 * MiB, `RSS grew ${(grew / MiB).toFixed(1)} MiB`);
      // A client that does read gets it all the same, in pieces: each 4004 is followed by a resume
      // from the last event it got (a native EventSource does that by itself), gapless and in order.
      const reader = openEventSource(
        `${deep.url}/sse?channel=${channel}&token=${jwt}&lastEventId=h1,${channel}~0~${top.epoch}`,
      );
      try {
        await until(() => reader.messages.length >= 400, 'the reading client to get the whole replay', 120_000);
        assert.deepEqual(
          reader.messages.map((m) => m.offset),
          Array.from({ length: 400 }, (_, i) => i + 1),
        );
        recordFigures(t, 'slow-sse-replay-reader', {
          replayMiB: +((400 * PAYLOAD.length) / MiB).toFixed(1),
          connections: reader.opens,
          disconnects: reader.control.filter((c) => c.type === 'herald.disconnect').length,
        });
      } finally {
        reader.source.close();
      }
      // And the ones that never read are ended (4004) once the replay has waited 10 s for them.
      let ended = 0;
      const deadline = Date.now() + 30_000;
      while (ended < 10 && Date.now() < deadline) {
        ended = (await deep.stats()).slowConsumerDisconnects;
        await new Promise((r) => setTimeout(r, 200));
      }
      for (const s of sockets) s.destroy();
      assert.equal(ended, 10, 'every stalled replay was ended as a slow consumer');
    } finally {
      await deep.kill();
    }
  });

  it('holds at most one unread answer for a client that keeps asking without reading (was: +650 MiB)', async (t) => {
    const channel = 'slow:history';
    await publishBig(hub.url, channel, 8); // 8 x 60 KB: each history answer is about 480 KB
    const jwt = await token({ sub: 'asker', channels: ['slow:*'] });
    const asker = async (): Promise<RawWs> => {
      const ws = await RawWs.open(hub.port);
      ws.answerPings = false;
      ws.command(1, 'connect', { token: jwt });
      await ws.waitFor((f) => f.opcode === Opcode.Text);
      ws.socket.pause();
      return ws;
    };
    const before = await hub.stats();
    const rssBefore = hub.rss().rss;
    // A asks 30 times and waits: its next answer waits for a drain that never comes: 4004 after 10 s.
    const a = await asker();
    for (let i = 0; i < 30; i++) a.command(2 + i, 'history', { channel, limit: 8 });
    // B keeps asking (50/s, within the command rate): its waiting commands pass 64 in flight: 4005.
    const b = await asker();
    let sentB = 0;
    const deadline = Date.now() + 25_000;
    let now = await hub.stats();
    while (Date.now() < deadline) {
      if (sentB < 500) for (let i = 0; i < 5; i++) b.command(2 + sentB++, 'history', { channel, limit: 8 });
      await new Promise((r) => setTimeout(r, 100));
      now = await hub.stats();
      if (now.slowConsumerDisconnects > before.slowConsumerDisconnects && now.rateLimited > before.rateLimited) break;
    }
    const grewMiB = +((hub.rss().peak - rssBefore) / MiB).toFixed(1);
    recordFigures(t, 'slow-history-reader', {
      answerKiB: 480,
      askedA: 30,
      askedB: sentB,
      slowConsumerDisconnects: now.slowConsumerDisconnects - before.slowConsumerDisconnects,
      rateLimited: now.rateLimited - before.rateLimited,
      rssGrowthMiB: grewMiB,
    });
    a.destroy();
    b.destroy();
    assert.equal(now.slowConsumerDisconnects, before.slowConsumerDisconnects + 1, 'A: a slow consumer (4004)');
    assert.equal(now.rateLimited, before.rateLimited + 1, 'B: too many commands in flight (4005)');
    assert.ok(grewMiB < 64, `RSS grew ${grewMiB} MiB`);
  });

  it('answers a client that pipelines big recoveries and reads slowly, without disconnecting it', async (t) => {
    // 30 x 480 KB = 14 MiB: more than loopback's socket buffers take, so answers must wait for drains.
    const channels = Array.from({ length: 30 }, (_, i) => `slow:pipe:${i}`);
    const epochs: string[] = [];
    for (const channel of channels) {
      await publishBig(hub.url, channel, 8);
      const top = (await (
        await fetch(`${hub.url}/api/channels/${channel}/history?limit=0`, {
          headers: { authorization: `Bearer ${API_KEY}` },
        })
      ).json()) as { epoch: string };
      epochs.push(top.epoch);
    }
    const ws = await RawWs.open(hub.port);
    ws.command(1, 'connect', { token: await token({ sub: 'piper', channels: ['slow:*'] }) });
    await ws.waitFor((f) => f.opcode === Opcode.Text);
    ws.socket.pause();
    // Thirty resubscriptions at once, each answered with 8 x 60 KB.
    channels.forEach((channel, i) =>
      ws.command(10 + i, 'subscribe', { channel, since: { offset: 0, epoch: epochs[i] } }),
    );
    await new Promise((r) => setTimeout(r, 1_500));
    ws.socket.resume();
    const answers = await Promise.all(
      channels.map((_, i) =>
        ws.waitFor((f) => f.opcode === Opcode.Text && startsWithText(f.payload, `{"id":${10 + i},`), 20_000),
      ),
    );
    const results = answers.map((f) => JSON.parse(f.payload.toString()).result);
    recordFigures(t, 'slow-pipelined-recoveries', { answers: results.length, answerKiB: 480 });
    assert.ok(results.every((r) => r?.recovered === true && r.publications.length === 8));
    assert.equal(ws.closeCode, undefined);
    ws.destroy();
  });
});

function tally(values: ReadonlyArray<string | number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1;
  return out;
}
