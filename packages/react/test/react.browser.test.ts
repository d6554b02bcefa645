/**
 * @herald/react with real React in real Chromium, under StrictMode (double renders, double
 * effects): one connection and one subscription per channel, every publication handled once, in
 * order, across a reconnect (recovered), presence, publishing from a hook, and letting go of the
 * channel on unmount. The page is bundled with esbuild and served by a real hub.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloseCode, closeInfo } from '@herald/protocol';
import { build, type Plugin } from 'esbuild';
import { chromium, type Page } from 'playwright-core';
import { publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, requireService } from '../../../test/support/services.ts';

const ENTRY = fileURLToPath(new URL('./fixture/app.ts', import.meta.url));

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * React 18 beside the workspace's React 19: the registry's tarballs unpacked under artifacts/
 * (npm cannot hold two majors of react-dom's peer `react` in one workspace tree), fetched once.
 */
function react18(): string {
  const dir = join(REPO, 'artifacts', 'react18');
  const modules = join(dir, 'node_modules');
  if (!existsSync(join(modules, 'react-dom', 'package.json'))) {
    mkdirSync(modules, { recursive: true });
    execFileSync('npm', ['pack', 'react@18.3.1', 'react-dom@18.3.1', 'scheduler@0.23.2', '--pack-destination', dir], {
      cwd: dir,
      stdio: 'ignore',
    });
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.tgz'))) {
      const name = file.replace(/-\d+\.\d+\.\d+\.tgz$/, '');
      mkdirSync(join(modules, name), { recursive: true });
      execFileSync('tar', ['-xzf', join(dir, file), '-C', join(modules, name), '--strip-components=1']);
    }
  }
  return modules;
}

/** Resolves react, react-dom and scheduler from `modules` instead of the workspace. */
function reactFrom(modules: string): Plugin {
  const require = createRequire(join(modules, 'index.js'));
  return {
    name: 'react-from',
    setup(b) {
      b.onResolve({ filter: /^(react|react-dom|scheduler)(\/|$)/ }, (args) => ({ path: require.resolve(args.path) }));
    },
  };
}

/** The page bundled in development mode (StrictMode's double effects only happen there). */
async function bundle(major: 18 | 19): Promise<string> {
  const out = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    conditions: ['herald-source'],
    define: { 'process.env.NODE_ENV': '"development"' },
    plugins: major === 18 ? [reactFrom(react18())] : [],
    logLevel: 'silent',
  });
  return out.outputFiles[0]?.text ?? '';
}

const HTML = '<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/app.js"></script>';

for (const major of [19, 18] as const)
  describe(`@herald/react in Chromium (React ${major}, StrictMode)`, () => {
    const cleanup: Array<() => Promise<void> | void> = [];
    after(async () => {
      for (const step of cleanup.reverse()) await step();
    });

    it('shares one subscription, handles each publication once, recovers, publishes and lets go', async (t) => {
      if (!(await requireService(t, 'chromium'))) return;
      const script = await bundle(major);
      const clientToken = await token({ sub: 'ada' });
      const routes = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
        const [type, body] =
          req.url === '/'
            ? ['text/html', HTML]
            : req.url === '/app.js'
              ? ['text/javascript', script]
              : req.url === '/token'
                ? ['text/plain', clientToken]
                : [];
        if (body === undefined) return false;
        res.writeHead(200, { 'Content-Type': type as string });
        res.end(body);
        return true;
      };
      const hub: TestHub = await startHub({ routes });
      cleanup.push(() => hub.close());
      const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
      cleanup.push(() => browser.close());
      const page: Page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(hub.url + '/');
      const probe = <T>(key: string): Promise<T> =>
        page.evaluate((k) => (window as unknown as { t: Record<string, unknown> }).t[k], key) as Promise<T>;
      const waitFor = async (what: string, check: () => Promise<boolean>): Promise<void> => {
        const deadline = Date.now() + 10_000;
        while (!(await check())) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      };

      assert.equal(String(await probe('reactVersion')).split('.')[0], String(major));
      await waitFor('connected', async () => (await probe('connection')) === 'connected');
      await waitFor('presence', async () => (await probe('presence')) === 1);
      // StrictMode mounted everything twice: still one connection, one subscription to `room`.
      assert.equal(hub.server.hub.sessions().length, 1);
      const session = hub.server.hub.sessions()[0];
      assert.deepEqual([...(session?.subscriptions.keys() ?? [])], ['room']);

      for (const n of [1, 2, 3]) await publish(hub, 'room', n);
      await waitFor('three publications', async () => (await probe<unknown[]>('handled')).length >= 3);
      assert.equal(await probe('counterLast'), 3);

      // A reconnect: publications made while the client is away arrive once, after `recovered`.
      hub.server.hub.endSession(session!, closeInfo(CloseCode.GoingAway));
      await publish(hub, 'room', 4);
      await until(() => hub.server.hub.sessions().length === 1, 'the reconnect');
      await waitFor('the fourth', async () => (await probe<unknown[]>('handled')).length >= 4);
      await page.evaluate(() =>
        (window as unknown as { t: { publish(c: string, d: unknown): Promise<unknown> } }).t.publish('room', 5),
      );
      await waitFor('the fifth', async () => (await probe<unknown[]>('handled')).length >= 5);
      assert.deepEqual(await probe('handled'), [1, 2, 3, 4, 5]);
      const view = await probe<{ data: unknown[]; recovered?: { recovered: boolean } }>('view');
      assert.deepEqual(view.data, [1, 2, 3, 4, 5]);
      assert.equal(view.recovered?.recovered, true);

      // Unmounted: the channel is let go on the hub; the connection stays with the provider.
      await page.evaluate(() => (window as unknown as { t: { hide(): void } }).t.hide());
      await until(() => hub.server.hub.sessions()[0]?.subscriptions.size === 0, 'the unsubscribe');

      // rewind: 3 on a channel holding five publications opens with the last three, once each
      // (StrictMode mounts the component twice), then goes live.
      for (const n of [1, 2, 3, 4, 5]) await publish(hub, 'feed', n);
      await page.evaluate(() => (window as unknown as { t: { showFeed(): void } }).t.showFeed());
      await waitFor('the rewind', async () => (await probe('feedState')) === 'subscribed');
      await waitFor('three from history', async () => (await probe<unknown[]>('feed')).length >= 3);
      await publish(hub, 'feed', 6);
      await waitFor('the live one', async () => (await probe<unknown[]>('feed')).length >= 4);
      assert.deepEqual(await probe('feed'), [3, 4, 5, 6]);
      assert.deepEqual([...(hub.server.hub.sessions()[0]?.subscriptions.keys() ?? [])], ['feed']);
      assert.deepEqual(errors, []);
    });
  });
