#!/usr/bin/env node
// The bundle-size budget: the minified browser bundle, gzipped, must stay within 8 KiB.
// Usage: node packages/client/scripts/size.mjs   (exits 1 past the budget)
import { gzipSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { bundle } from './bundle.mjs';

export const BUDGET_BYTES = 8 * 1024;

/** `{ minified, gzipped }` sizes in bytes of the browser bundle. */
export async function bundleSize() {
  const code = await bundle();
  return { minified: Buffer.byteLength(code), gzipped: gzipSync(code, { level: 9 }).length };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { minified, gzipped } = await bundleSize();
  const verdict = gzipped <= BUDGET_BYTES ? 'within' : 'OVER';
  console.log(
    `herald-client.min.js: ${minified} B minified, ${gzipped} B gzipped (${verdict} the ${BUDGET_BYTES} B budget)`,
  );
  if (gzipped > BUDGET_BYTES) process.exit(1);
}
