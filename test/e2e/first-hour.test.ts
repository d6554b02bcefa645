/**
 * The sample apps as a new user meets them (issue 14), in real Chromium:
 * - item 9: with demo tokens off (HERALD_JWT_SECRET set), the order-tracking and dashboard pages
 *   say why they cannot connect instead of "Reconnecting in N s" forever;
 * - item 13: the chat takes display names with an apostrophe; after a hub restart that lost
 *   nothing it does not claim that messages were missed, and it shows what was sent to the new hub
 *   before it reconnected; the dashboard says its figures are stale when the publisher stops.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Page } from 'playwright-core';
import { publish } from '../support/hub.ts';
import { RestartableAt } from '../support/hub-restart.ts';
import { pageOpener, runScript, screenshot, startSite, watchErrors, type Site } from './support.ts';

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

const newPage = pageOpener(cleanup);

const hasMessage = (text: string) => (page: Page) =>
  page.waitForFunction((t) => [...document.querySelectorAll('.message .text')].some((m) => m.textContent === t), text, {
    timeout: 30_000,
  });

test('without demo tokens, the order-tracking and dashboard pages say why they cannot connect', async (t) => {
  const site = await startSite({}, { demo: false });
  cleanup.push(() => site.close());
  for (const path of ['/examples/order-tracking/', '/examples/live-dashboard/']) {
    const page = await newPage(t);
    if (page === undefined) return;
    await page.goto(`${site.url}${path}`);
    await page.waitForSelector('.banner:not([hidden])', { timeout: 15_000 });
    const banner = (await page.textContent('.banner:not([hidden])')) ?? '';
    assert.match(banner, /hands out no demo tokens/, `${path}: ${banner}`);
    assert.match(banner, /HERALD_DEMO=true/);
    // The reason stays up through the retries: each retry passes through "connecting", which
    // carries no error, and a banner that blinks away there is gone whenever the reader looks.
    await page.evaluate(() => {
      const seen = { retries: 0, hidden: 0 };
      (window as unknown as { seen: typeof seen }).seen = seen;
      const banner = document.querySelector('.banner') as HTMLElement;
      const pill = document.querySelector('.conn') as HTMLElement;
      new MutationObserver(() => {
        if (banner.hidden || banner.textContent === '') seen.hidden++;
      }).observe(banner, { attributes: true, childList: true, characterData: true, subtree: true });
      new MutationObserver(() => {
        if (pill.dataset.state === 'connecting') seen.retries++;
      }).observe(pill, { attributes: true });
    });
    await page.waitForFunction(() => (window as unknown as { seen: { retries: number } }).seen.retries >= 1, null, {
      timeout: 30_000,
    });
    await page.waitForSelector('.conn[data-state="disconnected"]', { timeout: 30_000 });
    const seen = await page.evaluate(() => (window as unknown as { seen: { hidden: number } }).seen);
    assert.equal(seen.hidden, 0, `${path}: the banner went away during a retry`);
  }
});

test('the chat takes a display name with an apostrophe', async (t) => {
  const site = await startSite();
  cleanup.push(() => site.close());
  const page = await newPage(t);
  if (page === undefined) return;
  const errors = watchErrors(page);
  await page.goto(`${site.url}/examples/chat/`);
  await page.fill('#name', "Zoë O'Brien");
  await page.click('#join-button');
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.waitForFunction(() => document.querySelector('#people')?.textContent?.includes("Zoë O'Brien (you)"));
  await page.fill('#message', 'Dia dhuit');
  await page.press('#message', 'Enter');
  await hasMessage('Dia dhuit')(page);
  assert.equal(await page.$eval('.message .who', (el) => el.textContent), "Zoë O'Brien");
  assert.deepEqual(errors, []);
});

test(
  'chat across a hub restart: no false "missed", and what the new hub got meanwhile shows',
  { timeout: 90_000 },
  async (t) => {
    const site = await RestartableAt.start(() => startSite());
    cleanup.push(() => site.close());
    const page = await newPage(t);
    if (page === undefined) return;
    await page.goto(`${site.url}/examples/chat/`);
    await page.fill('#name', 'Ada');
    await page.click('#join-button');
    await page.waitForSelector('#conn[data-state="connected"]');
    await page.fill('#message', 'before the restart');
    await page.press('#message', 'Enter');
    await hasMessage('before the restart')(page);

    // The hub restarts with the in-memory broker: a new, empty history. While the page is still
    // away, someone posts to the new hub.
    await site.restart(async () => {
      const fresh = await startSite();
      await publish(fresh, 'chat:lobby', { text: 'sent during the restart' }, { event: 'message' });
      return fresh;
    });
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: 30_000 });
    await hasMessage('sent during the restart')(page);
    const note = (await page.textContent('#room-note')) ?? '';
    assert.doesNotMatch(note, /missed/, 'nothing says a message was missed');
    assert.match(note, /restarted/);
    // Live messages go on after it, in order.
    await publish(site.current, 'chat:lobby', { text: 'after the restart' }, { event: 'message' });
    await hasMessage('after the restart')(page);
    const texts = await page.$$eval('.message .text', (els) => els.map((e) => e.textContent));
    assert.deepEqual(texts, ['before the restart', 'sent during the restart', 'after the restart']);
    await screenshot(page, 'chat-restart');
  },
);

test('the dashboard says its figures are stale when the publisher stops', { timeout: 60_000 }, async (t) => {
  const site: Site = await startSite();
  cleanup.push(() => site.close());
  const publisher = runScript('examples/live-dashboard/publish-metrics.mjs', [], {
    HERALD_URL: site.url,
    INTERVAL_MS: '300',
  });
  cleanup.push(() => void publisher.child.kill());
  const page = await newPage(t);
  if (page === undefined) return;
  await page.goto(`${site.url}/examples/live-dashboard/`);
  await page.waitForFunction(() => /· ([3-9]|\d\d+) of/.test(document.querySelector('#footnote')?.textContent ?? ''));
  assert.equal(await page.isHidden('#stale'), true, 'fresh while samples come');
  publisher.child.kill();
  await page.waitForSelector('#stale:not([hidden])', { timeout: 15_000 });
  assert.match((await page.textContent('#stale')) ?? '', /stale/);
  assert.equal(await page.getAttribute('body', 'data-stale'), 'true');
  assert.match((await page.textContent('#conn')) ?? '', /^Live/, 'the connection itself is fine');
  await screenshot(page, 'live-dashboard-stale');
});
