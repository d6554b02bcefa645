#!/usr/bin/env node
/**
 * Builds the fan-out's native write (native/herald-write.c) into native/build/herald-write.node.
 *
 * Optional: the hub runs without it (src/transports/direct-write.ts falls back to the socket's
 * handle), so a machine with no C compiler or no node headers gets a note, not a failed build.
 * `HERALD_REQUIRE_NATIVE=1` (CI) turns that note into a failure.
 *
 * Why `cc` and not node-gyp: one C file against node's N-API needs only node's headers, which a
 * node install ships (`<prefix>/include/node`); node-gyp would download headers when it does not
 * find them, and this project builds with no network beyond the registries.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'native');
const source = join(nativeDir, 'herald-write.c');
const output = join(nativeDir, 'build', 'herald-write.node');
const required = process.env['HERALD_REQUIRE_NATIVE'] === '1';

function headerDirs() {
  const candidates = [
    process.env['npm_config_nodedir'],
    join(dirname(process.execPath), '..'),
    '/usr',
    '/usr/local',
  ].filter((dir) => dir !== undefined && dir !== '');
  return candidates.map((dir) => join(dir, 'include', 'node')).filter((dir) => existsSync(join(dir, 'node_api.h')));
}

function skip(reason) {
  const message = `native write not built (${reason}); the hub uses node's socket writes instead`;
  if (required) {
    console.error(`build-native: ${message}, and HERALD_REQUIRE_NATIVE=1`);
    process.exit(1);
  }
  console.warn(`build-native: ${message}`);
  process.exit(0);
}

if (process.platform !== 'linux' && process.platform !== 'darwin') skip(`not built on ${process.platform}`);
const [include] = headerDirs();
if (include === undefined) skip("node's headers (include/node/node_api.h) not found");

const compiler = process.env['CC'] ?? 'cc';
const platformFlags = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];
mkdirSync(join(nativeDir, 'build'), { recursive: true });
// Written beside the target and renamed: a process that has the old module loaded keeps it.
const temporary = `${output}.${process.pid}`;
try {
  execFileSync(
    compiler,
    [
      '-O2',
      '-shared',
      '-fPIC',
      '-Wall',
      '-Werror',
      `-I${include}`,
      '-DNAPI_VERSION=8',
      '-DNODE_GYP_MODULE_NAME=herald_write',
      ...platformFlags,
      '-o',
      temporary,
      source,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
} catch (error) {
  skip(`${compiler} failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
}
renameSync(temporary, output);
