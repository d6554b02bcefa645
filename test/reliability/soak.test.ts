/**
 * Soak: moderate, mixed, churning load for HERALD_SOAK_SECONDS (default 120; the on-demand run
 * is 3600) against a hub in its own process. 200 WebSocket subscribers over 20 channels (5 of
 * them leave and resume from their position every second), 20 EventSource clients, 10
 * long-pollers following their cursors, about 100 publications/s (some ephemeral, some with
 * idempotency keys), history and presence queries, and the witness. After a warm-up that fills
 * the retained history, the hub's heap after a full GC and its RSS must not grow past the bound,
 * however long the run; and nobody may see a gap.
 *
 *   HERALD_SOAK_SECONDS=3600 node scripts/run-tests.mjs test/reliability/soak
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { API_KEY, token } from '../support/hub.ts';
import { openEventSource, type EventSourceClient } from '../support/sse.ts';
import { startChildHub, MiB, type ChildHub } from './support/child-hub.ts';
import { envInt, recordFigures } from './support/figures.ts';
import { Witness } from './support/witness.ts';

/** Two minutes in CI, as the issue asks (documented in docs/reliability.md); 3600 on demand. */
const SECONDS = envInt('HERALD_SOAK_SECONDS', 120);
const WARMUP_SECONDS = Math.min(30, Math.ceil(SECONDS / 4));
const CHANNELS = 20;
const WS_CLIENTS = 200;
const SSE_CLIENTS = 20;
const POLLERS = 10;
/** Growth allowed between the end of the warm-up and the end of the run, whatever its length. */
const HEAP_GROWTH_BOUND = 16 * MiB;
const RSS_GROWTH_BOUND = 64 * MiB;
const DATA = { text: 'x'.repeat(900) };

class SoakClient {
  readonly channel: string;
  ws: WebSocket | undefined;
  position: { offset: number; epoch: string } | undefined;
  gaps = 0;
  received = 0;
  recoveredTrue = 0;
  recoveredFalse = 0;
  readonly #jwt: string;
  readonly #url: string;

  constructor(url: string, jwt: string, channel: string) {
    this.#url = url;
    this.#jwt = jwt;
    this.channel = channel;
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.#url);
      this.ws = ws;
      ws.on('error', reject);
      ws.on('open', () => {
        ws.send(JSON.stringify({ id: 1, method: 'connect', params: { token: this.#jwt } }));
        const since = this.position;
        ws.send(
          JSON.stringify({
            id: 2,
            method: 'subscribe',
            params: { channel: this.channel, ...(since ? { since } : {}) },
          }),
        );
      });
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as any;
        if (m.id === 2) {
          if (m.error) return reject(new Error(m.error.code));
          if (m.result.recovered === true) this.recoveredTrue++;
          if (m.result.recovered === false) this.recoveredFalse++;
          for (const p of m.result.publications ?? []) this.#take(p);
          if (m.result.publications === undefined || m.result.recovered === false) {
            this.position = { offset: m.result.offset, epoch: m.result.epoch };
          }
          resolve();
        } else if (m.push === 'pub' && m.pub.offset !== undefined) this.#take(m.pub);
      });
    });
  }

  #take(pub: { offset: number; epoch: string }): void {
    const p = this.position;
    if (p !== undefined && pub.epoch === p.epoch && pub.offset !== p.offset + 1) this.gaps++;
    this.position = { offset: pub.offset, epoch: pub.epoch };
    this.received++;
  }

  async reconnect(): Promise<void> {
    const old = this.ws;
    await new Promise<void>((resolve) => {
      old?.once('close', () => resolve());
      old?.close();
    });
    await this.open();
  }
}

describe('soak', () => {
  let hub: ChildHub;
  before(async () => {
    hub = await startChildHub({ options: { historySize: 100 } });
  });
  after(() => hub.kill());

  it(
    `${SECONDS} s of mixed load: no memory growth past the bound, no gap`,
    { timeout: (SECONDS + 300) * 1000 },
    async (t) => {
      const jwt = await token({ sub: 'soak', channels: ['soak:*', 'witness'], publish: ['soak:*'] });
      const witness = await Witness.start(hub, 'witness', 50);
      const clients = Array.from(
        { length: WS_CLIENTS },
        (_, i) => new SoakClient(hub.wsUrl, jwt, `soak:${i % CHANNELS}`),
      );
      for (const c of clients) await c.open();
      const sources: EventSourceClient[] = Array.from({ length: SSE_CLIENTS }, (_, i) =>
        openEventSource(`${hub.url}/sse?channel=soak:${i % CHANNELS}&token=${jwt}`),
      );
      let running = true;
      const counts = { published: 0, publishFailed: 0, polls: 0, pollFailed: 0, churned: 0, queries: 0 };
      const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };

      const publisher = (async () => {
        let n = 0;
        while (running) {
          n++;
          const body: Record<string, unknown> = { channel: `soak:${n % CHANNELS}`, data: DATA };
          if (n % 10 === 0) body.ephemeral = true;
          if (n % 20 === 1) body.idempotencyKey = `soak-${n}`;
          try {
            const r = await fetch(`${hub.url}/api/publish`, { method: 'POST', headers, body: JSON.stringify(body) });
            await r.arrayBuffer();
            if (r.status === 200) counts.published++;
            else counts.publishFailed++;
          } catch {
            counts.publishFailed++;
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const pollers = Array.from({ length: POLLERS }, async (_, i) => {
        let cursor: string | undefined;
        while (running) {
          try {
            const q = new URLSearchParams({
              channel: `soak:${i % CHANNELS}`,
              token: jwt,
              timeout: '5',
              ...(cursor ? { cursor } : {}),
            });
            const r = await fetch(`${hub.url}/poll?${q}`);
            const body = (await r.json()) as { cursor?: string };
            if (r.status === 200) {
              cursor = body.cursor;
              counts.polls++;
            } else counts.pollFailed++;
          } catch {
            counts.pollFailed++;
          }
        }
      });
      const churn = (async () => {
        let k = 0;
        while (running) {
          await new Promise((r) => setTimeout(r, 1000));
          for (let j = 0; j < 5 && running; j++) {
            await (clients[(k++ * 37) % WS_CLIENTS] as SoakClient).reconnect();
            counts.churned++;
          }
          for (const path of [
            '/api/channels',
            `/api/channels/soak:${k % CHANNELS}/history?limit=10`,
            `/api/channels/soak:${k % CHANNELS}/presence`,
          ]) {
            const r = await fetch(hub.url + path, { headers });
            await r.arrayBuffer();
            counts.queries++;
          }
        }
      })();

      const samples: Array<{ s: number; heap: number; rss: number }> = [];
      const started = Date.now();
      while (Date.now() - started < SECONDS * 1000) {
        await new Promise((r) => setTimeout(r, 5_000));
        const m = await hub.memory(true);
        samples.push({ s: Math.round((Date.now() - started) / 1000), heap: m.heapUsed, rss: m.rss });
        assert.equal(hub.exitStatus, undefined, 'the hub exited');
      }
      running = false;
      await Promise.all([publisher, churn, ...pollers]);
      const report = await witness.finish();
      for (const c of clients) c.ws?.close();
      for (const s of sources) s.source.close();

      const afterWarmup = samples.filter((x) => x.s >= WARMUP_SECONDS);
      const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
      const head = afterWarmup.slice(0, 3);
      const tail = afterWarmup.slice(-3);
      const heapGrowth = mean(tail.map((x) => x.heap)) - mean(head.map((x) => x.heap));
      const rssGrowth = mean(tail.map((x) => x.rss)) - mean(head.map((x) => x.rss));
      const gaps = clients.reduce((n, c) => n + c.gaps, 0);
      const recoveredFalse = clients.reduce((n, c) => n + c.recoveredFalse, 0);
      const figures = {
        seconds: SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        ...counts,
        publishedPerSecond: Math.round(counts.published / SECONDS),
        wsReceived: clients.reduce((n, c) => n + c.received, 0),
        sseReceived: sources.reduce((n, s) => n + s.messages.length, 0),
        resumes: clients.reduce((n, c) => n + c.recoveredTrue, 0),
        recoveredFalse,
        gaps,
        heapAfterGcMiB: {
          start: +(mean(head.map((x) => x.heap)) / MiB).toFixed(1),
          end: +(mean(tail.map((x) => x.heap)) / MiB).toFixed(1),
        },
        rssMiB: {
          start: +(mean(head.map((x) => x.rss)) / MiB).toFixed(1),
          end: +(mean(tail.map((x) => x.rss)) / MiB).toFixed(1),
        },
        heapGrowthMiB: +(heapGrowth / MiB).toFixed(2),
        rssGrowthMiB: +(rssGrowth / MiB).toFixed(2),
        witness: report,
      };
      recordFigures(t, SECONDS >= 3600 ? 'soak-hour' : 'soak', figures);
      assert.equal(gaps, 0, 'a WebSocket subscriber saw a gap');
      assert.equal(recoveredFalse, 0, 'a quick resume was not recovered');
      assert.equal(counts.publishFailed, 0);
      assert.ok(heapGrowth < HEAP_GROWTH_BOUND, `heap grew ${figures.heapGrowthMiB} MiB`);
      assert.ok(rssGrowth < RSS_GROWTH_BOUND, `RSS grew ${figures.rssGrowthMiB} MiB`);
    },
  );
});
