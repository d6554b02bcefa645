// One meaning per code: the reconnect advice of every disconnect comes from the registry
// (`closeInfo`, `CLOSE_CODES`, `closeCodeInfo`), never typed by hand at a call site.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { CLOSE_CODES, CloseCode, closeInfo } from '@herald/protocol';

const root = new URL('../../../', import.meta.url).pathname;
const REGISTRY = 'packages/protocol/src/codes.ts';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'test') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (/\.(ts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

test('no source outside the registry types a reconnect advice by hand', () => {
  const files = ['packages', 'apps', 'examples'].flatMap((d) => sources(join(root, d)));
  assert.ok(files.length > 50, 'the scan found the sources');
  const offenders: string[] = [];
  for (const file of files) {
    const rel = relative(root, file);
    if (rel === REGISTRY || rel.startsWith('apps/herald/public/herald-client')) continue;
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      // `// api-field`: a request body of POST /api/disconnect, where the caller chooses the advice.
      if (line.trimEnd().endsWith('// api-field')) return;
      if (/\breconnect\s*:\s*(true|false)\b/.test(line)) offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, [], 'use closeInfo(code) or the registry instead');
});

test('closeInfo gives every code the registry advice and its reason', () => {
  for (const [code, info] of Object.entries(CLOSE_CODES)) {
    const built = closeInfo(Number(code) as CloseCode);
    assert.deepEqual(built, { code: Number(code), reason: info.reason, reconnect: info.reconnect });
  }
  assert.equal(closeInfo(CloseCode.RateLimited, 'too many').reason, 'too many');
});

test('the retry policy agrees with the reconnect advice', () => {
  for (const [code, info] of Object.entries(CLOSE_CODES)) {
    assert.equal(info.retry === 'stop', !info.reconnect, `code ${code}`);
  }
});
