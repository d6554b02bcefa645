/**
 * The order-tracking sample app in real Chromium: the page follows an order over SSE and updates
 * for statuses from the backend script and from its operator panel; and a status published while
 * the hub restarts (memory broker: every stream is new afterwards) still reaches the open page.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { RestartableAt } from '../support/hub-restart.ts';
import { requireService } from '../support/services.ts';
import { launchBrowser, runScript, screenshot, startSite, watchErrors } from './support.ts';

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

const SCRIPT = 'examples/order-tracking/publish-status.mjs';

test('order tracking: live statuses, also across a hub restart', { timeout: 90_000 }, async (t) => {
  if (!(await requireService(t, 'chromium'))) return;
  const site = await RestartableAt.start(() => startSite());
  cleanup.push(() => site.close());
  const env = { HERALD_URL: site.url };

  // A status published before the page opens is shown from the channel's history.
  const placed = runScript(SCRIPT, ['7731', 'placed'], env);
  assert.equal(await placed.exited, 0, placed.output());

  const browser = await launchBrowser();
  cleanup.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = watchErrors(page);
  await page.goto(`${site.url}/examples/order-tracking/?order=7731`);
  await page.waitForFunction(() => document.querySelector('#current')?.getAttribute('data-status') === 'placed');
  await page.waitForSelector('#conn[data-state="connected"]');

  // The operator panel publishes through POST /api/publish with the page's token.
  await page.click('#advance');
  await page.waitForFunction(() => document.querySelector('#current')?.getAttribute('data-status') === 'paid');

  // The backend script, live.
  const packed = runScript(SCRIPT, ['7731', 'packed', 'Two parcels'], env);
  assert.equal(await packed.exited, 0, packed.output());
  await page.waitForFunction(() => document.querySelector('#current')?.getAttribute('data-status') === 'packed');
  assert.equal(await page.textContent('#current-detail'), 'Two parcels');

  // The hub goes away; the shop publishes "shipped" meanwhile; the script keeps trying.
  await site.down();
  await page.waitForSelector('#conn:not([data-state="connected"])');
  const shipped = runScript(SCRIPT, ['7731', 'shipped'], env);
  // The front resets new connections. fetch reports that at once, or, when the reset lands after
  // the connection counted as open, tries again by itself until the script's 10 s attempt timeout
  // ends the attempt: either way the script says it is retrying, at the latest after 10 s.
  const deadline = Date.now() + 30_000;
  while (!shipped.output().includes('retrying')) {
    assert.ok(Date.now() < deadline, `the script did not retry: ${shipped.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await site.up();
  assert.equal(await shipped.exited, 0, shipped.output());

  // The page resumes, learns its old stream is gone (recovered: false), reads the new one.
  await page.waitForFunction(
    () => document.querySelector('#current')?.getAttribute('data-status') === 'shipped',
    undefined,
    {
      timeout: 30_000,
    },
  );
  const steps = await page.$$eval('#steps li', (lis) =>
    lis.map((li) => `${li.getAttribute('data-step')}:${li.className}`),
  );
  assert.deepEqual(steps, [
    'placed:done',
    'paid:done',
    'packed:done',
    'shipped:now',
    'out_for_delivery:todo',
    'delivered:todo',
  ]);
  await screenshot(page, 'order-tracking');
  // Failed loads and WebSocket handshakes are the page retrying while the hub drained and was
  // down (refused, reset, 503): Chromium logs each one itself. Anything else is a page error.
  assert.deepEqual(
    errors.filter(
      (e) =>
        !e.startsWith('console: Failed to load resource') && !/^console: WebSocket connection to '.*' failed/.test(e),
    ),
    [],
  );
});
