/**
 * The sample apps use the SDK's default transport order (issue 14, item 10), so behind a proxy
 * that refuses WebSocket they run on SSE, and behind one that also buffers event streams on
 * long-polling, with everything they do: history, presence and publish included (PROTOCOL.md v1.1
 * section 4; issue 12, item 2). In real Chromium, through real HTTP proxies (test/support/http-proxy.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { publish } from '../support/hub.ts';
import { HttpProxy } from '../support/http-proxy.ts';
import { pageOpener, runScript, screenshot, startSite, watchErrors, type Site } from './support.ts';

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

const CASES = [
  { proxy: { refuseUpgrades: true }, transport: 'sse', label: 'SSE', name: 'refuses WebSocket' },
  {
    proxy: { refuseUpgrades: true, bufferEventStreams: true },
    transport: 'poll',
    label: 'long-polling',
    name: 'refuses WebSocket and buffers SSE',
  },
] as const;

let site: Site;
const newPage = pageOpener(cleanup);
before(async () => {
  site = await startSite();
  cleanup.push(() => site.close());
});

async function open(t: TestContext, url: string): Promise<{ page: Page; errors: string[] } | undefined> {
  const page = await newPage(t);
  if (page === undefined) return undefined;
  const errors = watchErrors(page);
  await page.goto(url);
  return { page, errors };
}

/** What the page reported besides the proxy's refusals and its held streams. */
function unexpected(errors: string[]): string[] {
  return errors.filter((e) => !/WebSocket connection to .* failed|Failed to load resource/.test(e));
}

const connectedOn = (label: string) => `#conn[data-state="connected"]:text("Live · ${label}")`;

for (const c of CASES) {
  describe(`behind a proxy that ${c.name}: the samples run on ${c.transport}`, () => {
    let proxy: HttpProxy;
    before(async () => {
      proxy = new HttpProxy(site.port, c.proxy);
      await proxy.listen();
      cleanup.push(() => proxy.close());
    });

    it('chat: history on join, presence, and messages both ways', { timeout: 90_000 }, async (t) => {
      const room = `chat:lobby`;
      const marker = `before ${c.transport}`;
      await publish(site, room, { text: marker }, { event: 'message' });
      // Grace talks to the hub directly (WebSocket); Ada only through the proxy.
      const grace = await open(t, `${site.url}/examples/chat/`);
      if (grace === undefined) return;
      await grace.page.fill('#name', `Grace ${c.transport}`);
      await grace.page.click('#join-button');
      await grace.page.waitForSelector(connectedOn('WebSocket'));
      const ada = await open(t, `${proxy.url}/examples/chat/`);
      if (ada === undefined) return;
      await ada.page.fill('#name', `Ada ${c.transport}`);
      await ada.page.click('#join-button');
      await ada.page.waitForSelector(connectedOn(c.label), { timeout: 30_000 });
      // History, read over HTTP with Ada's token.
      await ada.page.waitForFunction(
        (text) => [...document.querySelectorAll('.message .text')].some((m) => m.textContent === text),
        marker,
      );
      // Presence, read over HTTP too: Ada sees Grace, and herself.
      await ada.page.waitForFunction(
        (name) => document.querySelector('#people')?.textContent?.includes(name),
        `Grace ${c.transport}`,
        { timeout: 20_000 },
      );
      assert.match((await ada.page.textContent('#people')) ?? '', new RegExp(`Ada ${c.transport} \\(you\\)`));
      // Messages both ways: Ada publishes over HTTP, receives over the fallback transport.
      await ada.page.fill('#message', `hello from ${c.transport}`);
      await ada.page.press('#message', 'Enter');
      await grace.page.waitForFunction(
        (text) => [...document.querySelectorAll('.message .text')].some((m) => m.textContent === text),
        `hello from ${c.transport}`,
      );
      await grace.page.fill('#message', `hello back over ${c.transport}`);
      await grace.page.press('#message', 'Enter');
      await ada.page.waitForFunction(
        (text) => [...document.querySelectorAll('.message .text')].some((m) => m.textContent === text),
        `hello back over ${c.transport}`,
      );
      assert.ok(proxy.refusedUpgrades > 0, 'the proxy refused WebSocket');
      if (c.transport === 'poll') assert.ok(proxy.bufferedStreams > 0, 'the proxy held the event stream');
      await screenshot(ada.page, `chat-${c.transport}`);
      assert.deepEqual(unexpected([...ada.errors, ...grace.errors]), []);
    });

    it('order tracking: statuses from the backend and from the operator panel', { timeout: 90_000 }, async (t) => {
      const order = c.transport === 'sse' ? '5101' : '5102';
      await publish(site, `orders:${order}`, { status: 'placed' }, { event: 'status' });
      const opened = await open(t, `${proxy.url}/examples/order-tracking/?order=${order}`);
      if (opened === undefined) return;
      const { page, errors } = opened;
      await page.waitForSelector(connectedOn(c.label), { timeout: 30_000 });
      await page.waitForFunction(() => document.querySelector('#current')?.getAttribute('data-status') === 'placed');
      await page.click('#advance');
      await page.waitForFunction(() => document.querySelector('#current')?.getAttribute('data-status') === 'paid');
      await publish(site, `orders:${order}`, { status: 'packed' }, { event: 'status' });
      await page.waitForFunction(() => document.querySelector('#current')?.getAttribute('data-status') === 'packed');
      assert.deepEqual(unexpected(errors), []);
    });

    it('live dashboard: the charts fill and move', { timeout: 90_000 }, async (t) => {
      const publisher = runScript('examples/live-dashboard/publish-metrics.mjs', [], {
        HERALD_URL: site.url,
        INTERVAL_MS: '300',
      });
      cleanup.push(() => void publisher.child.kill());
      const opened = await open(t, `${proxy.url}/examples/live-dashboard/`);
      if (opened === undefined) return;
      const { page, errors } = opened;
      await page.waitForSelector(connectedOn(c.label), { timeout: 30_000 });
      await page.waitForFunction(() =>
        /· ([3-9]|\d\d+) of/.test(document.querySelector('#footnote')?.textContent ?? ''),
      );
      publisher.child.kill();
      assert.deepEqual(unexpected(errors), []);
    });
  });
}
