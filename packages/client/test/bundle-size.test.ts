/** The browser bundle's budget (scripts/size.mjs): `npm test` fails once it grows past 8 KiB gzipped. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { bundle } from '../scripts/bundle.mjs';
import { BUDGET_BYTES, bundleSize } from '../scripts/size.mjs';

test('the minified browser bundle stays within 8 KiB gzipped', async () => {
  const { minified, gzipped } = await bundleSize();
  assert.ok(gzipped <= BUDGET_BYTES, `${gzipped} B gzipped is over the ${BUDGET_BYTES} B budget`);
  // The README reports the size; keep it honest within 10 %.
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const reported = /about ([\d.]+) KB minified and gzipped/.exec(readme);
  assert.ok(reported, 'README.md reports the bundle size');
  const kb = Number(reported[1]);
  assert.ok(Math.abs(kb * 1000 - gzipped) <= gzipped * 0.1, `README says ${kb} KB, the bundle is ${gzipped} B`);
  assert.ok(minified > gzipped);
});

test('the bundle is plain ESM for browsers: no Node.js modules, no imports left', async () => {
  const code = await bundle();
  assert.match(code, /export\s*\{/);
  assert.doesNotMatch(code, /\bimport\s*[{*\w]|require\(|node:|process\.|Buffer\b/);
});
