// The error registry and docs/errors.md must list exactly the same codes with the same statuses.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CLOSE_CODES, ERROR_CODES, UnsubscribeCode } from '@herald/protocol';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

function tableRows(heading: string): string[][] {
  const section = doc.split(/^## /m).find((s) => s.startsWith(heading));
  assert.ok(section, `docs/errors.md has a "## ${heading}" section`);
  return section
    .split('\n')
    .filter((line) => /^\|\s*`?\d|^\|\s*`[a-z_]+`/.test(line))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim().replace(/`/g, '')),
    );
}

test('docs/errors.md lists exactly the error codes of the registry, with their HTTP status', () => {
  const documented = Object.fromEntries(tableRows('Error codes').map(([code, status]) => [code, Number(status)]));
  assert.deepEqual(documented, { ...ERROR_CODES });
});

test('docs/errors.md lists exactly the close codes of the registry', () => {
  const documented = tableRows('WebSocket close codes').map(([code]) => Number(code));
  assert.deepEqual(documented.sort(), Object.keys(CLOSE_CODES).map(Number).sort());
});

test('docs/errors.md lists exactly the unsub push codes', () => {
  const documented = tableRows('`unsub` push codes').map(([code]) => Number(code));
  assert.deepEqual(documented.sort(), Object.values(UnsubscribeCode).sort());
});
