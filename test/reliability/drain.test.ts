/**
 * Graceful drain: SIGTERM to a hub holding thousands of WebSocket and SSE clients while four
 * publishers publish as fast as they can. Clients must be told to reconnect (WebSocket close 1001
 * after a `disconnect` push with reconnect: true, SSE `herald.disconnect`) in batches, /readyz
 * must answer 503, nothing acknowledged may be lost (every acked offset is in the history the
 * hub holds when it stops; everything else was refused with an error or never answered), and the
 * process must exit 0 within the stated time.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { API_KEY, token, until } from '../support/hub.ts';
import { startChildHub, MiB, type ChildHub } from './support/child-hub.ts';
import { FULL, envInt, pool, recordFigures } from './support/figures.ts';
import { httpGet } from './support/http-raw.ts';

const WS_CLIENTS = envInt('HERALD_DRAIN_CLIENTS', FULL ? 5_000 : 2_000);
const SSE_CLIENTS = 100;
const CHANNELS = ['drain:0', 'drain:1', 'drain:2', 'drain:3'];
const BATCH = 500;
const PAUSE_MS = 50;

interface Publisher {
  acked: Array<{ channel: string; offset: number }>;
  refused: Record<string, number>;
  unanswered: number;
}

/** Publishes over one keep-alive connection until it fails `maxFailures` times in a row. */
async function publishLoop(port: number, channel: string, out: Publisher, stop: () => boolean): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let failures = 0;
  let n = 0;
  while (!stop() && failures < 20) {
    const body = JSON.stringify({ channel, data: { n: ++n } });
    const result = await new Promise<{ status: number; body: string } | undefined>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/api/publish',
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${API_KEY}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', () => resolve(undefined));
        },
      );
      req.on('error', () => resolve(undefined));
      req.end(body);
    });
    if (result === undefined) {
      out.unanswered++;
      failures++;
      await new Promise((r) => setTimeout(r, 20));
    } else if (result.status === 200) {
      failures = 0;
      out.acked.push({ channel, offset: (JSON.parse(result.body) as { offset: number }).offset });
    } else {
      failures++;
      const code = `${result.status} ${(JSON.parse(result.body) as any).error?.code}`;
      out.refused[code] = (out.refused[code] ?? 0) + 1;
    }
  }
  agent.destroy();
}

describe('graceful drain', () => {
  let hub: ChildHub | undefined;
  const sockets: WebSocket[] = [];
  after(async () => {
    for (const s of sockets) s.terminate();
    await hub?.kill();
  });

  it(
    `SIGTERM with ${WS_CLIENTS} WebSocket and ${SSE_CLIENTS} SSE clients: batches of ${BATCH}, nothing acknowledged lost, exit 0`,
    { timeout: 300_000 },
    async (t) => {
      hub = await startChildHub({
        options: { historySize: 1_000_000 },
        drain: { batchSize: BATCH, pauseMs: PAUSE_MS },
        witnessChannels: CHANNELS,
      });
      const h = hub;
      const jwt = await token({ sub: 'drainee', channels: ['drain:*'] });
      const closes: Array<{ code: number; at: number; push: any }> = [];
      await pool(
        Array.from({ length: WS_CLIENTS }, (_, i) => i),
        64,
        async (i) => {
          const ws = new WebSocket(`${h.wsUrl}?token=${jwt}`, { localAddress: `127.0.0.${60 + (i % 8)}` });
          sockets.push(ws);
          let last: any;
          ws.on('message', (data) => {
            const m = JSON.parse(data.toString());
            if (m.push === 'disconnect') last = m;
          });
          ws.on('error', () => undefined);
          ws.on('close', (code) => closes.push({ code, at: Date.now(), push: last }));
          await new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('error', reject);
          });
          ws.send(JSON.stringify({ id: 1, method: 'connect' }));
          ws.send(JSON.stringify({ id: 2, method: 'subscribe', params: { channel: CHANNELS[i % CHANNELS.length] } }));
        },
      );
      const sse = await Promise.all(
        Array.from({ length: SSE_CLIENTS }, (_, i) =>
          httpGet(h.port, `/sse?channel=${CHANNELS[i % 4]}&token=${jwt}`, { localAddress: '127.0.0.70' }),
        ),
      );
      const sseEnds = sse.map(
        (s) =>
          new Promise<string>((resolve) => {
            let tail = '';
            s.res.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-300)));
            s.res.on('close', () => resolve(/event: herald\.disconnect\ndata: (\{.*\})/.exec(tail)?.[1] ?? 'none'));
          }),
      );
      const stats = await h.stats();
      assert.equal(stats.connections.websocket, WS_CLIENTS);
      assert.equal(stats.connections.sse, SSE_CLIENTS);

      // A keep-alive connection opened before the drain, to ask /readyz during it.
      const probe = new Agent({ keepAlive: true, maxSockets: 1 });
      const readyz = (): Promise<number> =>
        new Promise((resolve) => {
          const req = request({ host: '127.0.0.1', port: h.port, path: '/readyz', agent: probe }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', () => resolve(0));
          req.end();
        });
      assert.equal(await readyz(), 200);

      const publishers: Publisher[] = CHANNELS.map(() => ({ acked: [], refused: {}, unanswered: 0 }));
      let stopPublishing = false;
      const loops = CHANNELS.map((channel, i) =>
        publishLoop(h.port, channel, publishers[i] as Publisher, () => stopPublishing),
      );
      await new Promise((r) => setTimeout(r, 1_000));
      const ackedBefore = publishers.reduce((n, p) => n + p.acked.length, 0);

      const rssBefore = h.rss().rss;
      const sigterm = Date.now();
      h.child.kill('SIGTERM');
      // Until the signal is handled the hub is still ready; then 503 (or the socket goes with the drain).
      let readyDuring = await readyz();
      for (let i = 0; i < 200 && readyDuring === 200; i++) readyDuring = await readyz();
      const [exit, drained] = await Promise.all([h.exited, h.drained]);
      const exitMs = Date.now() - sigterm;
      stopPublishing = true;
      await Promise.all(loops);
      probe.destroy();
      await until(() => closes.length >= WS_CLIENTS, 'every WebSocket close to be seen', 30_000);
      const sseGoodbyes = await Promise.all(sseEnds);

      // Nothing acknowledged is lost: every acked offset is in what the broker held at the end.
      const lost: string[] = [];
      for (const [i, channel] of CHANNELS.entries()) {
        const stored = new Set(drained.witness[channel]);
        for (const { offset } of (publishers[i] as Publisher).acked)
          if (!stored.has(offset)) lost.push(`${channel}#${offset}`);
        const offsets = drained.witness[channel] ?? [];
        assert.deepEqual(
          offsets,
          Array.from({ length: offsets.length }, (_, k) => k + 1),
          `${channel}: history is 1..N`,
        );
      }
      const closeTimes = closes.map((c) => c.at - sigterm).sort((a, b) => a - b);
      const codes: Record<string, number> = {};
      for (const c of closes) codes[c.code] = (codes[c.code] ?? 0) + 1;
      const refused: Record<string, number> = {};
      for (const p of publishers) for (const [k, v] of Object.entries(p.refused)) refused[k] = (refused[k] ?? 0) + v;
      const figures = {
        websocketClients: WS_CLIENTS,
        sseClients: SSE_CLIENTS,
        batch: `${BATCH} per ${PAUSE_MS} ms`,
        exitCode: exit,
        exitAfterSigtermMs: exitMs,
        drainMs: drained.drainMs,
        firstCloseMs: closeTimes[0],
        lastCloseMs: closeTimes[closeTimes.length - 1],
        closeCodes: codes,
        goodbyePushes: closes.filter((c) => c.push?.code === 1001 && c.push?.reconnect === true).length,
        sseGoodbyes: sseGoodbyes.filter((g) => g.includes('"reconnect":true')).length,
        readyzDuringDrain: readyDuring,
        ackedBeforeSigterm: ackedBefore,
        ackedTotal: publishers.reduce((n, p) => n + p.acked.length, 0),
        ackedDuringDrain: publishers.reduce((n, p) => n + p.acked.length, 0) - ackedBefore,
        refusedWithError: refused,
        unanswered: publishers.reduce((n, p) => n + p.unanswered, 0),
        lost: lost.length,
        rssBeforeMiB: Math.round(rssBefore / MiB),
      };
      recordFigures(t, FULL ? 'drain-full' : 'drain', figures);
      assert.equal(exit, 0);
      assert.deepEqual(lost, [], 'acknowledged publications missing from history');
      assert.equal(codes['1001'], WS_CLIENTS, 'every WebSocket closed with 1001');
      assert.equal(figures.goodbyePushes, WS_CLIENTS, 'each after a disconnect push with reconnect: true');
      assert.equal(figures.sseGoodbyes, SSE_CLIENTS, 'every SSE stream ended with herald.disconnect reconnect: true');
      assert.ok(readyDuring === 503 || readyDuring === 0, `/readyz during the drain: ${readyDuring}`);
      // Batches: the drain waited at least one pause between consecutive batches (a lower bound the
      // implementation guarantees; when clients see their close depends on the machine: a figure).
      const batches = Math.ceil((WS_CLIENTS + SSE_CLIENTS) / BATCH);
      assert.ok(drained.drainMs >= (batches - 1) * PAUSE_MS, `drain took ${drained.drainMs} ms for ${batches} batches`);
    },
  );
});
