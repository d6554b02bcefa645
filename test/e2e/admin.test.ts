/**
 * The admin page in real Chromium: signing in with the API key, then live figures for the
 * connections this test opens on every transport, their channels, publication rates, the broker
 * and the node list, updated over the hub's own SSE.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { API_KEY, publish, token, type TestHub } from '../support/hub.ts';
import { requireService } from '../support/services.ts';
import { openEventSource, type EventSourceClient } from '../support/sse.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { launchBrowser, screenshot, startSite, watchErrors } from './support.ts';

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

test('admin page: live counts of the connections the test opened', { timeout: 60_000 }, async (t) => {
  if (!(await requireService(t, 'chromium'))) return;
  const site = await startSite();
  cleanup.push(() => site.close());
  const hub: TestHub = { ...site, wsUrl: `ws://127.0.0.1:${site.port}/ws` };
  const jwt = await token({ sub: 'shopper', channels: ['shop:*'] });

  // 2 WebSocket + 3 SSE + 1 long-poll waiting.
  const sockets: WsTestClient[] = [];
  for (let i = 0; i < 2; i++) {
    const ws = await WsTestClient.connect(hub.wsUrl, jwt);
    assert.equal((await ws.call('subscribe', { channel: 'shop:orders' })).error, undefined);
    sockets.push(ws);
  }
  cleanup.push(() => sockets.forEach((ws) => ws.socket.close()));
  const streams: EventSourceClient[] = ['shop:orders', 'shop:news', 'shop:news'].map((channel) =>
    openEventSource(`${hub.url}/sse?channel=${channel}&token=${jwt}`),
  );
  cleanup.push(() => streams.forEach((s) => s.source.close()));
  const pollAbort = new AbortController();
  cleanup.push(() => pollAbort.abort());
  void fetch(`${hub.url}/poll?channel=shop:news&timeout=50&token=${jwt}`, { signal: pollAbort.signal }).catch(
    () => undefined,
  );

  const browser = await launchBrowser();
  cleanup.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = watchErrors(page);
  await page.goto(`${hub.url}/admin`);

  // A wrong key is refused, and the page says so.
  await page.fill('#api-key', 'not-the-key-0123456789');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error:not([hidden])');
  assert.match((await page.textContent('#login-error')) ?? '', /not the API key/);

  await page.fill('#api-key', API_KEY);
  await page.click('#login-submit');
  await page.waitForSelector('#dashboard:not([hidden])');
  // The key never lands in the URL or in storage the page's scripts could read.
  assert.equal(page.url(), `${hub.url}/admin`);
  assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');

  const text = (selector: string): Promise<string> => page.$eval(selector, (el) => el.textContent ?? '');
  await page.waitForFunction(() => document.querySelector('#connections-total')?.textContent === '6', undefined, {
    timeout: 10_000,
  });
  assert.match(await text('[data-transport="websocket"]'), /WebSocket 2/);
  assert.match(await text('[data-transport="sse"]'), /SSE 3/);
  assert.match(await text('[data-transport="poll"]'), /Long-poll 1/);
  assert.match(await text('#viewers-note'), /1 admin viewer/);

  // Channels with their subscribers (long-polls are not in presence).
  await page.waitForFunction(() => document.querySelectorAll('#channels-table tbody tr').length === 2);
  const rows = await page.$$eval('#channels-table tbody tr', (trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 2).map((td) => td.textContent)),
  );
  assert.deepEqual(rows, [
    ['shop:orders', '3'],
    ['shop:news', '2'],
  ]);

  // Broker and nodes.
  assert.equal(await text('#broker-name'), 'memory');
  assert.equal(await text('#broker-state'), 'connected');
  assert.equal(await page.$$eval('#nodes .node', (nodes) => nodes.length), 1);

  // Publications per second move.
  for (let i = 0; i < 20; i++) await publish(hub, 'shop:orders', { i });
  await page.waitForFunction(() => Number(document.querySelector('#pub-rate')?.textContent) > 0);
  await screenshot(page, 'admin');

  // And the counts follow connections going away.
  sockets.pop()?.socket.close();
  await page.waitForFunction(() => document.querySelector('#connections-total')?.textContent === '5');
  // Two 401s are the design: the page first asks whether a session exists, then the wrong key.
  assert.deepEqual(
    errors.filter((e) => !/status of 401/.test(e)),
    [],
  );
});
