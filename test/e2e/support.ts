/**
 * Browser test support: a real hub with the real pages (admin, sample apps, demo tokens) on a
 * loopback port, real Chromium, and screenshots kept in artifacts/e2e/ (gitignored).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeraldServer, type HeraldOptions } from '@herald/server';
import { chromium, type Browser, type Page } from 'playwright-core';
import { pages, type Pages, type PagesOptions } from '../../apps/herald/src/pages.ts';
import { API_KEY, JWT_SECRET } from '../support/hub.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, requireService } from '../support/services.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACTS = join(REPO, 'artifacts', 'e2e');
const BUNDLE = join(REPO, 'apps/herald/public/herald-client.js');

export interface Site {
  readonly server: HeraldServer;
  readonly pages: Pages;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A hub serving the pages like `herald serve` does, demo tokens on (unless told), on a loopback port of its own. */
export async function startSite(
  options: Partial<HeraldOptions> = {},
  pageOptions: Partial<PagesOptions> = {},
): Promise<Site> {
  ensureClientBundle();
  const site = pages({ apiKey: API_KEY, jwtSecret: JWT_SECRET, admin: true, demo: true, ...pageOptions });
  const server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, routes: site.routes, ...options });
  const address = await server.listen(0, '127.0.0.1');
  site.attach(server);
  return {
    server,
    pages: site,
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    close: async () => {
      site.detach();
      await server.close();
    },
  };
}

/** The sample apps load the SDK's browser bundle from the hub; build it when it is not there yet. */
function ensureClientBundle(): void {
  if (existsSync(BUNDLE)) return;
  const result = spawnSync(process.execPath, [join(REPO, 'packages/client/scripts/bundle.mjs')], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.status !== 0) throw new Error(`could not build the client bundle: ${result.stderr}`);
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/**
 * Pages in fresh browser contexts of one Chromium, launched on first use. Returns undefined when
 * Chromium is missing (the test is skipped, or fails under HERALD_REQUIRE_SERVICES=1). `cleanup`
 * receives the closing steps of the contexts and the browser.
 */
export function pageOpener(cleanup: Array<() => Promise<void> | void>): (t: TestContext) => Promise<Page | undefined> {
  let browser: Promise<Browser> | undefined;
  return async (t) => {
    if (!(await requireService(t, 'chromium'))) return undefined;
    if (browser === undefined) {
      browser = launchBrowser();
      const launched = browser;
      cleanup.push(async () => (await launched).close());
    }
    const context = await (await browser).newContext({ viewport: { width: 1200, height: 800 } });
    cleanup.push(() => context.close());
    return context.newPage();
  };
}

/** Collects uncaught errors and console errors (failed loads, CSP refusals) of the page. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  return errors;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Runs one of the sample apps' backend scripts against a hub. */
export function runScript(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [join(REPO, script), ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HERALD_API_KEY: API_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (output += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}
