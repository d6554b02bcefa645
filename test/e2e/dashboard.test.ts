/**
 * The live-dashboard sample app (React, @herald/react) in real Chromium: the real publisher script
 * samples the hub's metrics and publishes them; the page opens with the samples already in the
 * channel's history, its charts keep moving, and the connections it shows include the page's own.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { until } from '../support/hub.ts';
import { requireService } from '../support/services.ts';
import { launchBrowser, runScript, screenshot, startSite, watchErrors } from './support.ts';

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

test('live dashboard: the charts move', { timeout: 60_000 }, async (t) => {
  if (!(await requireService(t, 'chromium'))) return;
  const site = await startSite();
  cleanup.push(() => site.close());
  const publisher = runScript('examples/live-dashboard/publish-metrics.mjs', [], {
    HERALD_URL: site.url,
    INTERVAL_MS: '300',
  });
  cleanup.push(() => void publisher.child.kill());
  // Let a few samples into the channel's history: the page should open with them already drawn.
  await until(() => site.server.hub.stats.publications >= 6, 'six samples published', 10_000);

  const browser = await launchBrowser();
  cleanup.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  const publishedBefore = site.server.hub.stats.publications;
  await page.goto(`${site.url}/examples/live-dashboard/`);

  const points = (): Promise<number> =>
    page.$eval('#footnote', (el) => Number(/· (\d+) of/.exec(el.textContent ?? '')?.[1] ?? 0));
  await page.waitForFunction(() => /· ([3-9]|\d\d+) of/.test(document.querySelector('#footnote')?.textContent ?? ''));
  assert.equal(await page.isHidden('#waiting'), true);
  const cpuPath = (): Promise<string> => page.$eval('#chart-cpu path.line', (el) => el.getAttribute('d') ?? '');
  const before = { points: await points(), path: await cpuPath() };
  // useChannel's `rewind`: the samples published before the page opened are drawn too.
  assert.ok(before.points >= publishedBefore, `${before.points} points, ${publishedBefore} published before`);
  await page.waitForFunction((n) => {
    const m = /· (\d+) of/.exec(document.querySelector('#footnote')?.textContent ?? '');
    return Number(m?.[1] ?? 0) >= n + 3;
  }, before.points);
  const later = { points: await points(), path: await cpuPath() };
  assert.ok(later.points > before.points, 'new samples arrived');
  assert.notEqual(later.path, before.path, 'the CPU line was redrawn with the new samples');
  // The page's own connection (WebSocket, the SDK's first choice here) is one of those it shows.
  assert.equal(await page.textContent('#conn'), 'Live · WebSocket');
  await page.waitForFunction(() => /WebSocket [1-9]/.test(document.querySelector('#by-transport')?.textContent ?? ''));
  await screenshot(page, 'live-dashboard');
  assert.deepEqual(errors, []);
});
