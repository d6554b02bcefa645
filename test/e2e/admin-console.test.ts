/**
 * The admin page's operator console in real Chromium: channel drill-down from the channel table
 * (subscribers, presence, history with offsets), the live event log, a test publish, the
 * connections of a user, and the unsubscribe and disconnect actions, all through the server API
 * with the admin session (`/admin/api/`), seen by real WebSocket clients.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { API_KEY, api, publish, token, until } from '../support/hub.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { pageOpener, screenshot, startSite, watchErrors } from './support.ts';

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});
const openPage = pageOpener(cleanup);

test(
  'admin console: drill-down, live log, test publish, unsubscribe and disconnect',
  { timeout: 90_000 },
  async (t) => {
    const page = await openPage(t);
    if (page === undefined) return;
    const site = await startSite();
    cleanup.push(() => site.close());
    const wsUrl = `ws://127.0.0.1:${site.port}/ws`;
    const alice = await WsTestClient.connect(wsUrl, await token({ sub: 'alice' }));
    const bob = await WsTestClient.connect(wsUrl, await token({ sub: 'bob' }));
    cleanup.push(
      () => alice.close(),
      () => bob.close(),
    );
    for (const ws of [alice, bob]) await ws.ok('subscribe', { channel: 'shop:orders' });
    await publish(site, 'shop:orders', { n: 1 }, { event: 'placed' });
    await publish(site, 'shop:orders', { n: 2 });

    const errors = watchErrors(page);
    // Without a session the console's API is closed.
    assert.equal((await api(site, 'GET', '/admin/api/info')).status, 401);
    await page.goto(`${site.url}/admin`);
    await page.fill('#api-key', API_KEY);
    await page.click('#login-submit');
    await page.waitForSelector('#dashboard:not([hidden])');

    // Drill down from the channel table.
    await page.waitForSelector('#channels-table tbody tr');
    await page.click('#channels-table tbody tr:has-text("shop:orders")');
    await page.waitForSelector('#channel-view:not([hidden])');
    await page.waitForFunction(() => document.querySelectorAll('#cv-history tbody tr').length === 2);
    const history = await page.$$eval('#cv-history tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    assert.deepEqual(history, [
      ['2', '', '{"n":2}'],
      ['1', 'placed', '{"n":1}'],
    ]);
    assert.match((await page.textContent('#cv-position')) ?? '', /offset 2, epoch /);
    // alice, bob and the console's own log reader.
    await page.waitForFunction(() => document.querySelectorAll('#cv-subscribers tbody tr').length === 3);
    const users = await page.$$eval('#cv-subscribers tbody tr td:first-child', (tds) =>
      tds.map((td) => td.textContent),
    );
    assert.deepEqual([...users].sort(), ['_herald-admin', 'alice', 'bob']);
    // The figures come from their own read, which may predate the log reader's subscription: the
    // console refreshes them, so wait for the count that includes it.
    await page.waitForFunction(() => /3 clients, 3 users/.test(document.querySelector('#cv-stats')?.textContent ?? ''));
    await page.waitForFunction(() => document.querySelectorAll('#cv-presence li').length === 3);

    // The live log shows a publication made elsewhere, then the console's own test publish.
    await page.waitForFunction(() => document.querySelector('#cv-log')?.textContent?.includes('following'));
    await publish(site, 'shop:orders', { from: 'backend' });
    await page.waitForFunction(() => document.querySelector('#cv-log')?.textContent?.includes('"from":"backend"'));
    await page.fill('#publish-data', '{"from": "console"}');
    await page.click('#publish-form button');
    await until(() => alice.publications('shop:orders').some((p) => p.data.from === 'console'), 'the test publish');
    await page.waitForFunction(() => document.querySelector('#cv-log')?.textContent?.includes('"from":"console"'));

    // Unsubscribe bob from the channel: his connection goes on, without the channel.
    await page.click('#cv-subscribers tbody tr:has-text("bob") button');
    await until(() => bob.pushes.some((p) => p.push === 'unsub'), "bob's unsub push");
    assert.deepEqual(
      bob.pushes.find((p) => p.push === 'unsub'),
      { push: 'unsub', channel: 'shop:orders', code: 2000, reason: 'unsubscribed by the server' },
    );
    assert.equal(bob.closeCode, undefined);
    await page.waitForFunction(() => document.querySelectorAll('#cv-subscribers tbody tr').length === 2);

    // Connections by user, and disconnect.
    await page.fill('#console-user', 'alice');
    await page.click('#user-form button');
    await page.waitForFunction(() => document.querySelectorAll('#uv-connections tbody tr').length === 1);
    assert.match((await page.textContent('#uv-connections tbody tr')) ?? '', /websocket.*shop:orders/);
    await screenshot(page, 'admin-console');
    await page.click('#uv-connections tbody tr button');
    assert.equal(await alice.closed, 4008);
    await page.waitForFunction(() => document.querySelectorAll('#uv-connections tbody tr').length === 0);
    await page.fill('#console-user', 'bob');
    await page.click('#user-form button');
    await page.waitForFunction(() => document.querySelectorAll('#uv-connections tbody tr').length === 1);
    await page.click('#uv-disconnect-all');
    assert.equal(await bob.closed, 4008);
    assert.deepEqual(bob.pushes.at(-1), {
      push: 'disconnect',
      code: 4008,
      reason: 'disconnected by the server',
      reconnect: false,
    });

    // A bad channel name is answered in the page, not thrown.
    await page.fill('#console-channel', 'bad channel!');
    await page.click('#channel-form button');
    await page.waitForSelector('#console-error:not([hidden])');
    assert.match((await page.textContent('#console-error')) ?? '', /not valid/);
    // The user view refreshing (every 3 s, or here at once) does not clear the channel view's error.
    // A marker row the refresh replaces: once it is gone, the refresh ran to its end (same task).
    await page.evaluate(() => document.querySelector('#uv-connections tbody')?.append(document.createElement('tr')));
    await page.click('#user-form button');
    await page.waitForFunction(() => document.querySelectorAll('#uv-connections tbody tr').length === 0);
    assert.match((await page.textContent('#console-error')) ?? '', /not valid/);
    assert.deepEqual(
      errors.filter((e) => !/status of (400|401)/.test(e)),
      [],
    );
  },
);
