/**
 * The chat sample with its own backend (examples/chat/backend.mjs) in real Chromium: a cookie
 * session instead of a demo token (the hub's connect hook asks the backend on the WebSocket
 * upgrade), the room list from an RPC, and a publish hook that refuses empty or too-long messages
 * while a good one reaches the other person.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startChatBackend } from '../../examples/chat/backend.mjs';
import { requireService } from '../support/services.ts';
import { launchBrowser, screenshot, startSite, watchErrors, type Site } from './support.ts';

const SECRET = 'chat-hook-secret-0123456789';
const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

async function join(
  browser: Browser,
  site: Site,
  backend: string,
  name: string,
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${site.url}/examples/chat/?backend=${encodeURIComponent(backend)}`);
  await page.fill('#name', name);
  await page.click('#join-button');
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.waitForFunction((who) => document.querySelector('#people')?.textContent?.includes(who), `${name} (you)`);
  return { page, errors };
}

test('chat with a cookie session, a publish hook and a room-list RPC', { timeout: 60_000 }, async (t) => {
  if (!(await requireService(t, 'chromium'))) return;
  const backend = await startChatBackend({ secret: SECRET });
  cleanup.push(() => backend.close());
  // No demo tokens: the only way in is the backend's session.
  const site = await startSite(
    {
      hooks: {
        connect: { url: `${backend.url}/hooks/connect` },
        publish: { url: `${backend.url}/hooks/publish` },
        rpc: { url: `${backend.url}/hooks/rpc` },
        secret: SECRET,
      },
    },
    { demo: false },
  );
  cleanup.push(() => site.close());
  const browser = await launchBrowser();
  cleanup.push(() => browser.close());

  const ada = await join(browser, site, backend.url, 'Ada');
  const grace = await join(browser, site, backend.url, 'Grace');
  // The rooms came from the backend's `rooms` RPC.
  assert.deepEqual(await ada.page.$$eval('.room-link', (els) => els.map((e) => e.textContent)), [
    '# lobby',
    '# random',
    '# help',
  ]);
  assert.equal(await ada.page.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');
  await ada.page.waitForFunction(() => document.querySelector('#people')?.textContent?.includes('Grace'));

  // The publish hook refuses an empty message and a too-long one; the page says so.
  await grace.page.fill('#message', '   ');
  await grace.page.press('#message', 'Enter');
  await grace.page.waitForFunction(() => document.querySelector('.banner')?.textContent?.includes('empty message'));
  await grace.page.fill('#message', 'x'.repeat(600));
  await grace.page.press('#message', 'Enter');
  await grace.page.waitForFunction(() => document.querySelector('.banner')?.textContent?.includes('at most 500'));

  // A good one (trimmed by the hook) reaches Ada, with the name the connect hook gave.
  await grace.page.fill('#message', '  Hello Ada  ');
  await grace.page.press('#message', 'Enter');
  await ada.page.waitForFunction(() =>
    [...document.querySelectorAll('.message .text')].some((m) => m.textContent === 'Hello Ada'),
  );
  assert.equal(await ada.page.$eval('.message .who', (el) => el.textContent), 'Grace');
  assert.equal(await ada.page.$$eval('.message', (els) => els.length), 1, 'the refused messages were never stored');
  await screenshot(ada.page, 'chat-hooks');
  assert.deepEqual(
    [...ada.errors, ...grace.errors].filter((e) => !/hub answered|Not sent/.test(e)),
    [],
  );
});
