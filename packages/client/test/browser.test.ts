/**
 * The browser bundle in real Chromium, served same-origin by a real hub: it receives over
 * WebSocket; behind a proxy that refuses WebSocket upgrades it falls back to SSE; it resumes
 * after the hub restarts (recovered: false, then the new stream); the `online` event ends a
 * backoff wait at once.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, it, type TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { publish, startHub, token, type TestHub } from '../../../test/support/hub.ts';
import { RestartableAt } from '../../../test/support/hub-restart.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, requireService } from '../../../test/support/services.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import { bundle } from '../scripts/bundle.mjs';
import { assertExactlyOnceInOrder, type Entry } from './helpers.ts';

const PAGE = `<!doctype html><meta charset="utf-8"><title>herald client</title>
<script type="module">
  import { Herald } from '/herald-client.js';
  const q = new URLSearchParams(location.search);
  const t = (window.t = { log: [], states: [] });
  t.client = new Herald(location.origin, {
    token: async () => (await fetch('/token')).text(),
    minReconnectDelayMs: Number(q.get('min') ?? 50),
    maxReconnectDelayMs: Number(q.get('max') ?? 500),
  });
  t.client.on('state', (s) => t.states.push({ state: s.state, transport: s.transport, retryInMs: s.retryInMs }));
  t.sub = t.client.subscribe(q.get('channel'));
  t.sub.on('publication', (p) => t.log.push({ kind: 'pub', offset: p.offset, epoch: p.epoch, data: p.data }));
  t.sub.on('recovered', (r) => t.log.push({ kind: 'recovered', recovered: r.recovered, epoch: r.position.epoch }));
</script>`;

interface Snapshot {
  log: Entry[];
  states: { state: string; transport?: string; retryInMs?: number }[];
  transport: string | undefined;
  state: string;
  sub: string;
}

let code: Promise<string> | undefined;
async function routes(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  const send = (type: string, body: string) => {
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
    return true;
  };
  if (url.pathname === '/page') return send('text/html; charset=utf-8', PAGE);
  if (url.pathname === '/herald-client.js') return send('text/javascript; charset=utf-8', await (code ??= bundle()));
  if (url.pathname === '/token') return send('text/plain', await token({ expiresIn: 600 }));
  return false;
}

describe('in Chromium', () => {
  let browser: Browser | undefined;
  let hub: RestartableAt<TestHub> | undefined;
  const proxies: TcpProxy[] = [];
  const pages = new Map<string, Page>();

  after(async () => {
    await browser?.close();
    for (const proxy of proxies) await proxy.close();
    await hub?.close();
  });

  async function setup(t: TestContext): Promise<boolean> {
    if (!(await requireService(t, 'chromium'))) return false;
    browser ??= await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    hub ??= await RestartableAt.start(() => startHub({ routes }));
    return true;
  }

  async function proxy(options: { refuseUpgrades?: boolean } = {}): Promise<TcpProxy> {
    const p = new TcpProxy(hub!.port, options);
    await p.listen();
    proxies.push(p);
    return p;
  }

  async function open(name: string, origin: string, query: Record<string, string> = {}): Promise<Page> {
    const page = await browser!.newPage();
    page.on('pageerror', (error) => console.error(`[${name}] ${error.message}`));
    await page.goto(`${origin}/page?${new URLSearchParams({ channel: `browser:${name}`, ...query })}`);
    pages.set(name, page);
    return page;
  }

  const snapshot = (page: Page): Promise<Snapshot> =>
    page.evaluate(() => {
      const t = (window as any).t;
      return {
        log: t.log,
        states: t.states,
        transport: t.client.transport,
        state: t.client.state.state,
        sub: t.sub.state,
      };
    });

  async function waitFor(page: Page, check: (s: Snapshot) => boolean, what: string, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await snapshot(page);
      if (check(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s).slice(0, 600)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const pubCount = (s: Snapshot) => s.log.filter((e) => e.kind === 'pub').length;

  it('receives over WebSocket', async (t) => {
    if (!(await setup(t))) return;
    const page = await open('ws', hub!.url);
    await waitFor(page, (s) => s.transport === 'websocket' && s.sub === 'subscribed', 'subscribed over WebSocket');
    for (let i = 1; i <= 3; i++) await publish(hub!, 'browser:ws', { i });
    const s = await waitFor(page, (s) => pubCount(s) === 3, 'three publications');
    assert.deepEqual(
      s.log.map((e) => e.kind === 'pub' && e.data.i),
      [1, 2, 3],
    );
  });

  it('falls back to SSE when WebSocket upgrades are refused, and still receives', async (t) => {
    if (!(await setup(t))) return;
    const blocked = await proxy({ refuseUpgrades: true });
    const page = await open('sse', blocked.url);
    const s0 = await waitFor(page, (s) => s.transport === 'sse' && s.sub === 'subscribed', 'subscribed over SSE');
    assert.deepEqual(
      s0.states.map((s) => `${s.state}:${s.transport}`),
      ['connecting:websocket', 'connecting:sse', 'connected:sse'],
    );
    for (let i = 1; i <= 3; i++) await publish(hub!, 'browser:sse', { i });
    const s = await waitFor(page, (s) => pubCount(s) === 3, 'three publications');
    assert.deepEqual(
      s.log.map((e) => e.kind === 'pub' && e.data.i),
      [1, 2, 3],
    );
  });

  it('resumes on both pages after the hub restarts: recovered: false, then the new stream', async (t) => {
    if (!(await setup(t))) return;
    const names = ['ws', 'sse'].filter((n) => pages.has(n));
    assert.equal(names.length, 2, 'the two pages of the tests before');
    await hub!.restart();
    for (const name of names) {
      await waitFor(
        pages.get(name)!,
        (s) => s.log.some((e) => e.kind === 'recovered' && !e.recovered) && s.sub === 'subscribed',
        `${name}: recovered: false after the restart`,
      );
    }
    for (let i = 4; i <= 6; i++) {
      await publish(hub!, 'browser:ws', { i });
      await publish(hub!, 'browser:sse', { i });
    }
    for (const name of names) {
      const s = await waitFor(pages.get(name)!, (s) => pubCount(s) === 6, `${name}: publications after the restart`);
      assertExactlyOnceInOrder(s.log);
      assert.deepEqual(
        s.log.filter((e) => e.kind === 'pub').map((e) => e.kind === 'pub' && e.data.i),
        [1, 2, 3, 4, 5, 6],
      );
    }
  });

  it('reconnects at once on the online event instead of waiting out its backoff', async (t) => {
    if (!(await setup(t))) return;
    const through = await proxy();
    const page = await open('online', through.url, { min: '200000', max: '600000' });
    await waitFor(page, (s) => s.sub === 'subscribed', 'subscribed');
    through.pause();
    through.cutAll();
    await waitFor(
      page,
      (s) => s.states.at(-1)?.state === 'disconnected' && (s.states.at(-1)?.retryInMs ?? 0) > 20_000,
      'a long backoff wait',
      60_000,
    );
    through.retarget(hub!.port);
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    // Far sooner than the 20 s+ the backoff had left.
    await waitFor(page, (s) => s.state === 'connected' && s.sub === 'subscribed', 'connected again', 10_000);
    await publish(hub!, 'browser:online', 'back');
    await waitFor(page, (s) => pubCount(s) === 1, 'a publication after the reconnect');
  });
});
