/**
 * What `npm pack` puts in each public package's tarball: the manifest with its entry points,
 * types, README and LICENSE, the built code every `exports` target names, and nothing else
 * (no tests, no build caches). Needs a built repository (`npm run build`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { npmPack, publicPackages } from './support.ts';

/** Every file path an `exports` map points at (all conditions but the repository's own `herald-source`). */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports === null || typeof exports !== 'object') return [];
  return Object.entries(exports).flatMap(([key, value]) => (key === 'herald-source' ? [] : exportTargets(value)));
}

test('each public package: manifest fields, and a tarball with what they name and nothing stray', () => {
  const packages = publicPackages();
  assert.ok(packages.length >= 12, `found ${packages.length} public packages`);
  const packed = new Map(
    npmPack(
      packages.map((p) => p.dir),
      undefined,
    ).map((p) => [p.name, p]),
  );
  for (const { manifest } of packages) {
    const name = manifest.name;
    for (const field of ['version', 'description', 'license', 'exports', 'types', 'files', 'engines']) {
      assert.ok(manifest[field] !== undefined, `${name}: package.json has no "${field}"`);
    }
    assert.equal(manifest.license, 'MIT', name);
    const files = new Set(packed.get(name)?.files.map((f) => f.path));
    assert.ok(files.size > 0, `${name} was not packed`);
    for (const required of ['package.json', 'README.md', 'LICENSE', String(manifest.types).replace(/^\.\//, '')]) {
      assert.ok(files.has(required), `${name}: the tarball has no ${required}`);
    }
    for (const target of [...exportTargets(manifest.exports), String(manifest.types)]) {
      assert.ok(files.has(target.replace(/^\.\//, '')), `${name}: exports names ${target}, not in the tarball`);
    }
    for (const path of files) {
      assert.doesNotMatch(path, /(^|\/)test\/|\.test\.|tsbuildinfo|node_modules\//, `${name}: stray ${path}`);
    }
  }
});
