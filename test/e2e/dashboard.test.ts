/**
 * The live-dashboard sample app in real Chromium: the real publisher script samples the hub's
 * metrics and publishes them; the page's charts fill and keep moving, and the connections it
 * shows include the page's own SSE stream.
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
  await until(() => site.server.hub.stats.publications >= 3, 'three samples published', 10_000);

  const browser = await launchBrowser();
  cleanup.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(`${site.url}/examples/live-dashboard/`);

  const points = (): Promise<number> =>
    page.$eval('#footnote', (el) => Number(/· (\d+) of/.exec(el.textContent ?? '')?.[1] ?? 0));
  await page.waitForFunction(() => /· ([3-9]|\d\d+) of/.test(document.querySelector('#footnote')?.textContent ?? ''));
  assert.equal(await page.isHidden('#waiting'), true);
  const cpuPath = (): Promise<string> => page.$eval('#chart-cpu path.line', (el) => el.getAttribute('d') ?? '');
  const before = { points: await points(), path: await cpuPath() };
  await page.waitForFunction((n) => {
    const m = /· (\d+) of/.exec(document.querySelector('#footnote')?.textContent ?? '');
    return Number(m?.[1] ?? 0) >= n + 3;
  }, before.points);
  const later = { points: await points(), path: await cpuPath() };
  assert.ok(later.points > before.points, 'new samples arrived');
  assert.notEqual(later.path, before.path, 'the CPU line was redrawn with the new samples');
  // The page's own SSE stream is one of the connections it shows.
  await page.waitForFunction(() => /SSE [1-9]/.test(document.querySelector('#by-transport')?.textContent ?? ''));
  await screenshot(page, 'live-dashboard');
  assert.deepEqual(errors, []);
});
