/**
 * The native write's build (scripts/build-native.mjs) is optional: a machine whose C compiler
 * fails gets a note and a working build, and HERALD_REQUIRE_NATIVE=1 (CI) turns the note into a
 * failure. `CC=false` stands in for the missing compiler; the module already built is left alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const script = fileURLToPath(new URL('../scripts/build-native.mjs', import.meta.url));
const built = fileURLToPath(new URL('../native/build/herald-write.node', import.meta.url));

function build(env: Record<string, string>): { status: number | null; stderr: string } {
  const run = spawnSync(process.execPath, [script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: run.status, stderr: run.stderr };
}

/** The built module's modification time, or undefined when there is none. */
function builtAt(): number | undefined {
  try {
    return statSync(built).mtimeMs;
  } catch {
    return undefined;
  }
}

describe('building the native write', () => {
  it('leaves a note and succeeds when the compiler fails', () => {
    const before = builtAt();
    const { status, stderr } = build({ CC: 'false', HERALD_REQUIRE_NATIVE: '' });
    assert.equal(status, 0);
    assert.match(stderr, /native write not built \(false failed/);
    assert.match(stderr, /the hub uses node's socket writes instead/);
    assert.equal(builtAt(), before, 'the module built before is untouched');
  });

  it('fails with HERALD_REQUIRE_NATIVE=1 when the compiler fails', () => {
    const { status, stderr } = build({ CC: 'false', HERALD_REQUIRE_NATIVE: '1' });
    assert.equal(status, 1);
    assert.match(stderr, /HERALD_REQUIRE_NATIVE=1/);
  });
});
