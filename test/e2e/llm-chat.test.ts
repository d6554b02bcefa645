/**
 * The LLM chat sample in real Chromium, with its simulated model (examples/llm-chat/model.mjs)
 * streaming into Durable Streams: a reload mid-answer shows the answer so far at once and goes on
 * from there, a second tab on the same conversation shows the same answer, and both end with
 * exactly what the stream holds: no token lost, none twice.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { attachDurableStreams } from '@herald/durable-streams';
import type { Browser, Page } from 'playwright-core';
import { API_KEY } from '../support/hub.ts';
import { requireService } from '../support/services.ts';
import { launchBrowser, runScript, screenshot, startSite, watchErrors } from './support.ts';

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

const answerText = (page: Page): Promise<string> => page.$eval('.turn.answer .text', (el) => el.textContent ?? '');
const answerState = (page: Page): Promise<string | undefined> =>
  page.$eval('.turn.answer', (el) => (el as HTMLElement).dataset.state);

async function open(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await (await browser.newContext({ viewport: { width: 1000, height: 760 } })).newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForSelector('#conn[data-state="connected"]');
  return { page, errors };
}

test(
  'LLM chat: a reload mid-answer goes on where it was; two tabs show the same stream',
  { timeout: 90_000 },
  async (t) => {
    if (!(await requireService(t, 'chromium'))) return;
    const site = await startSite();
    attachDurableStreams(site.server);
    cleanup.push(() => site.close());
    const model = runScript('examples/llm-chat/model.mjs', [], { HERALD_URL: site.url, LLM_TOKENS_PER_SECOND: '12' });
    cleanup.push(async () => {
      model.child.kill('SIGTERM');
      await model.exited;
    });
    const deadline = Date.now() + 20_000;
    while (!model.output().includes('model ready')) {
      if (Date.now() > deadline) throw new Error(`the model did not start:\n${model.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const browser = await launchBrowser();
    cleanup.push(() => browser.close());
    const url = `${site.url}/examples/llm-chat/#e2econversation1`;

    const first = await open(browser, url);
    const question = 'What happens when I reload?';
    await first.page.fill('#question', question);
    await first.page.press('#question', 'Enter');
    // Part of the answer is there (the question repeated, and a few words more), more is coming.
    const opening = `You asked: “${question}”. `;
    await first.page.waitForFunction(
      (length) => (document.querySelector('.turn.answer .text')?.textContent ?? '').length >= length,
      opening.length + 12,
    );
    const beforeReload = await answerText(first.page);
    assert.equal(await answerState(first.page), 'streaming');
    assert.ok(beforeReload.startsWith(opening), beforeReload);

    await first.page.reload();
    // After the reload: the answer so far at once, then the rest, still streaming.
    await first.page.waitForFunction(
      (shown) => (document.querySelector('.turn.answer .text')?.textContent ?? '').length > shown.length,
      beforeReload,
    );
    assert.ok((await answerText(first.page)).startsWith(beforeReload), 'the reloaded page goes on from the same text');
    assert.equal(await answerState(first.page), 'streaming', 'the answer was still being written after the reload');
    await screenshot(first.page, 'llm-chat-after-reload');

    // A second tab on the same conversation follows the same answer.
    const second = await open(browser, url);
    await second.page.waitForSelector('.turn.answer');
    for (const page of [first.page, second.page]) {
      await page.waitForSelector('.turn.answer[data-state="done"]', { timeout: 30_000 });
    }
    await screenshot(second.page, 'llm-chat-second-tab');

    // Both show exactly what the answer's stream holds, and the conversation once.
    const answerPath = await first.page.$eval('.turn.answer', (el) => (el as HTMLElement).dataset.id);
    const stored = await fetch(`${site.url}/ds/llm-chat/c/e2econversation1/a/${answerPath}`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    assert.equal(stored.headers.get('stream-closed'), 'true');
    const full = await stored.text();
    for (const page of [first.page, second.page]) {
      assert.equal(await answerText(page), full);
      assert.deepEqual(await page.$$eval('.turn', (els) => els.map((el) => el.className)), [
        'turn question',
        'turn answer',
      ]);
      assert.equal(await page.textContent('.turn.question'), question);
    }
    assert.deepEqual([...first.errors, ...second.errors], []);
  },
);
