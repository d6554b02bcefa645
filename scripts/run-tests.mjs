#!/usr/bin/env node
// Runs the test suite with node's own runner. TypeScript tests run from source through tsx, and
// workspace packages resolve to their src/ through the "herald-source" export condition.
// Usage: node scripts/run-tests.mjs [path-filter ...]
// Three test files at a time (HERALD_TEST_CONCURRENCY): most wait on sockets, timers and child
// processes rather than the CPU, so three keep a 2-core machine busy without starving one.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = ['packages', 'apps', 'test', 'examples'];
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (/\.test\.(ts|mjs)$/.test(name)) files.push(relative(root, path));
  }
}
for (const r of roots) {
  try {
    walk(join(root, r));
  } catch {
    // a missing folder has no tests
  }
}
const filters = process.argv.slice(2);
const selected = files.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (selected.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  [
    '--conditions=herald-source',
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${process.env.HERALD_TEST_CONCURRENCY ?? '3'}`,
    ...selected,
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } },
);
process.exit(result.status ?? 1);
