/**
 * The chat sample app in real Chromium, two browser contexts (two people): each sees the other in
 * the room, a typing indicator and a message from one reach the other over WebSocket, and a third
 * person joining later gets the message from history.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { requireService } from '../support/services.ts';
import { launchBrowser, screenshot, startSite, watchErrors, type Site } from './support.ts';

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

async function join(browser: Browser, site: Site, name: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${site.url}/examples/chat/`);
  await page.fill('#name', name);
  await page.click('#join-button');
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.waitForFunction((who) => document.querySelector('#people')?.textContent?.includes(who), `${name} (you)`);
  return { page, errors };
}

test('chat: messages, typing and presence between two browsers', { timeout: 60_000 }, async (t) => {
  if (!(await requireService(t, 'chromium'))) return;
  const site = await startSite();
  cleanup.push(() => site.close());
  const browser = await launchBrowser();
  cleanup.push(() => browser.close());

  const ada = await join(browser, site, 'Ada');
  const grace = await join(browser, site, 'Grace');
  // Presence: each sees the other (Ada through a join event, Grace through the presence list).
  await ada.page.waitForFunction(() => document.querySelector('#people')?.textContent?.includes('Grace'));
  await grace.page.waitForFunction(() => document.querySelector('#people')?.textContent?.includes('Ada'));

  // Typing: an ephemeral publication from Grace shows on Ada's page.
  await grace.page.type('#message', 'Hello', { delay: 30 });
  await ada.page.waitForFunction(() => document.querySelector('#typing')?.textContent === 'Grace is typing…');
  await screenshot(ada.page, 'chat-typing');

  await grace.page.fill('#message', 'Hello Ada, the report is ready.');
  await grace.page.press('#message', 'Enter');
  await ada.page.waitForFunction(() =>
    [...document.querySelectorAll('.message .text')].some((m) => m.textContent === 'Hello Ada, the report is ready.'),
  );
  // The message ends the indicator.
  assert.equal(await ada.page.textContent('#typing'), '');
  const sender = await ada.page.$eval('.message .who', (el) => el.textContent);
  assert.equal(sender, 'Grace', 'the name comes from the token info the hub attached');
  await screenshot(ada.page, 'chat-message');

  // History on join: a third person sees the message published before they came.
  const linus = await join(browser, site, 'Linus');
  await linus.page.waitForFunction(() =>
    [...document.querySelectorAll('.message .text')].some((m) => m.textContent === 'Hello Ada, the report is ready.'),
  );
  await ada.page.waitForFunction(() => document.querySelector('#people')?.textContent?.includes('Linus'));

  // Leaving: Linus closes the page, and Ada's list drops him.
  await linus.page.context().close();
  await ada.page.waitForFunction(() => !document.querySelector('#people')?.textContent?.includes('Linus'));
  assert.deepEqual([...ada.errors, ...grace.errors, ...linus.errors], []);
});
