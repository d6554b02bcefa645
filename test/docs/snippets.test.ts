/**
 * Every code block in README.md, docs/*.md and the package, app and sample READMEs runs (issue 14,
 * item 11), against a real `herald serve` started for the purpose. How each language runs, what a
 * block may rely on and how to mark the rare block that cannot run is written in docs/snippets.md;
 * read it before adding a code block to the docs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { parse as parseYaml } from 'yaml';
import { loadConfig, settingNames } from '../../apps/herald/src/config.ts';
import { runHerald, type HeraldProcess } from '../support/cli.ts';
import { HttpProxy } from '../support/http-proxy.ts';
import { API_KEY, JWT_SECRET, token } from '../support/hub.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, requireService } from '../support/services.ts';
import { ROOT, documentedFiles, snippetsOf, type Snippet } from './snippets.ts';

const SCRATCH = join(ROOT, 'artifacts', 'snippets');
/** How long a block that should finish may take. */
const DEFAULT_LIMIT_MS = 60_000;
const SHELL = new Set(['sh', 'bash', 'shell']);
const SCRIPT = new Set(['js', 'mjs', 'javascript', 'ts', 'typescript']);
const NOT_CODE = new Set(['', 'text', 'txt', 'plain']);

let hub: HeraldProcess;
let base: string;
let env: NodeJS.ProcessEnv;
let browser: Browser | undefined;
/**
 * Browser blocks are pages on the hub's origin as the browser sees it: a proxy in front of the hub
 * that serves them. (A page the browser did not load from the network, such as one fulfilled by
 * the test, may not open connections to loopback addresses.)
 */
// Chromium asks every origin for a favicon; a 404 would count as the page's error.
const pages = new Map<string, string>([['/favicon.ico', '']]);
let front: HttpProxy;

before(async () => {
  hub = runHerald(['serve'], {
    PORT: '0',
    HOST: '127.0.0.1',
    HERALD_API_KEY: API_KEY,
    HERALD_JWT_SECRET: JWT_SECRET,
    HERALD_DEMO: 'true',
    HERALD_ANONYMOUS_CHANNELS: 'public:*',
    HERALD_LOG_LEVEL: 'warn',
    // The Pusher app of docs/pusher.md's examples.
    HERALD_PUSHER_APPS: JSON.stringify([{ id: '123', key: 'app-key', secret: 'app-secret-123' }]),
  });
  base = await hub.listening;
  front = new HttpProxy(Number(new URL(base).port), { pages });
  await front.listen();
  env = {
    PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: process.env.HOME ?? '/tmp',
    NODE_OPTIONS: '',
    NODE_NO_WARNINGS: '1',
    // A server a block starts (an embedded hub, a receiver) takes a free port, never 8080.
    PORT: '0',
    HERALD_URL: base,
    HERALD_API_KEY: API_KEY,
    HERALD_JWT_SECRET: JWT_SECRET,
    HERALD_TOKEN: await token({ sub: 'snippet', channels: ['*'], publish: ['*'], expiresIn: 3600 }),
  };
  mkdirSync(SCRATCH, { recursive: true });
});

after(async () => {
  await browser?.close();
  await front.close();
  hub.child.kill('SIGTERM');
  await hub.exited;
});

/** The docs address the hub as `npm start` does; the blocks run against the hub started here. */
function localized(code: string, url: string): string {
  const host = new URL(url).host;
  return code.replaceAll('127.0.0.1:8080', host).replaceAll('localhost:8080', host);
}

const name = (s: Snippet): string => `${s.file.replace(/[^A-Za-z0-9]+/g, '-')}-${s.line}`;

for (const file of documentedFiles()) {
  const snippets = snippetsOf(file).filter((s) => !NOT_CODE.has(s.lang) || s.directive !== undefined);
  if (snippets.length === 0) continue;
  describe(file, () => {
    for (const snippet of snippets) {
      it(`line ${snippet.line}: ${snippet.lang || 'untagged'} ${snippet.flags.join(' ')}`.trim(), async (t) => {
        assert.equal(snippet.directiveError, undefined, snippet.directiveError);
        if (snippet.directive?.kind === 'skip') return t.skip(snippet.directive.reason);
        await run(t, snippet);
      });
    }
  });
}

async function run(t: TestContext, s: Snippet): Promise<void> {
  const runsFor = s.directive?.kind === 'runs-for' ? s.directive.seconds * 1000 : undefined;
  const browserBlock = s.lang === 'html' || (SCRIPT.has(s.lang) && s.flags.includes('browser'));
  const code = localized(s.code, browserBlock ? front.url : base);
  if (SHELL.has(s.lang)) return runProcess('bash', ['-euo', 'pipefail', '-c', code], runsFor, false);
  if (SCRIPT.has(s.lang) && s.flags.includes('browser')) return runInBrowser(t, s, code, runsFor);
  if (SCRIPT.has(s.lang)) {
    const ts = s.lang === 'ts' || s.lang === 'typescript';
    const path = join(SCRATCH, `${name(s)}.${ts ? 'mts' : 'mjs'}`);
    writeFileSync(path, code);
    return runProcess(process.execPath, [...(ts ? ['--import', 'tsx'] : []), path], runsFor, true);
  }
  if (s.lang === 'html') return runInBrowser(t, s, code, runsFor);
  if (s.lang === 'json') {
    JSON.parse(s.code);
    return;
  }
  if (s.lang === 'yaml' || s.lang === 'yml') return checkYaml(s);
  assert.fail(
    `${s.lang}: no runner for this language. Tag output and diagrams "text"; for anything else add ` +
      '<!-- snippet: skip <reason> --> before the block (docs/snippets.md)',
  );
}

/**
 * Runs a shell block or a script to its end (exit 0 within DEFAULT_LIMIT_MS), or for `runsFor`
 * milliseconds without failing. Scripts must also keep stderr empty; shell tools may talk there.
 */
async function runProcess(command: string, args: string[], runsFor: number | undefined, quietStderr: boolean) {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const limit = runsFor ?? DEFAULT_LIMIT_MS;
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([exited, new Promise<'time'>((r) => (timer = setTimeout(() => r('time'), limit)))]);
  clearTimeout(timer);
  if (result === 'time') {
    // The whole group: a block may have started a server or a pipeline.
    process.kill(-(child.pid as number), 'SIGKILL');
    await exited;
  }
  const output = `stdout:\n${out}\nstderr:\n${err}`;
  if (result === 'time') assert.ok(runsFor !== undefined, `did not finish within ${limit / 1000} s\n${output}`);
  else assert.equal(result, 0, `exited ${result}\n${output}`);
  if (quietStderr) assert.equal(err.trim(), '', `wrote to stderr\n${output}`);
}

/** A module script (`js browser`) or a page (`html`) on the hub's own origin, in Chromium. */
async function runInBrowser(t: TestContext, s: Snippet, code: string, runsFor: number | undefined): Promise<void> {
  if (!(await requireService(t, 'chromium'))) return;
  browser ??= await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    const html =
      s.lang === 'html'
        ? code
        : `<!doctype html><meta charset="utf-8"><script type="module">\n${code}\nwindow.__snippetDone = true;\n</script>`;
    const path = `/__snippets/${name(s)}.html`;
    pages.set(path, html);
    await page.goto(`${front.url}${path}`);
    if (s.lang === 'html') await page.waitForTimeout(runsFor ?? 2000);
    else {
      await page.waitForFunction(() => (window as { __snippetDone?: boolean }).__snippetDone === true, undefined, {
        timeout: runsFor ?? 20_000,
      });
      await page.waitForTimeout(runsFor === undefined ? 500 : 0);
    }
    assert.deepEqual(errors, [], 'the page reported errors');
  } finally {
    await context.close();
  }
}

/** YAML parses; a block whose keys are all `herald serve` settings is a config file `herald` accepts. */
function checkYaml(s: Snippet): void {
  const value = parseYaml(s.code) as unknown;
  const keys = new Set(settingNames().map((setting) => setting.key));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  if (!Object.keys(value).every((key) => keys.has(key))) return;
  const path = join(SCRATCH, `${name(s)}.yaml`);
  writeFileSync(path, s.code);
  loadConfig({}, path);
}
