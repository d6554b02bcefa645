#!/usr/bin/env node
// Bundles the React dashboard (src/) into public/app.js, which the hub serves at
// /examples/live-dashboard/. Run by `npm run build`; the output is generated, ignored by git.
// Usage: node examples/live-dashboard/build.mjs
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

/** `demo-lib/<file>`: the hub's shared demo scripts, left as imports of `/lib/<file>` it serves. */
const demoLib = {
  name: 'demo-lib',
  setup(b) {
    b.onResolve({ filter: /^demo-lib\// }, (args) => ({
      path: args.path.replace(/^demo-lib\//, '/lib/'),
      external: true,
    }));
  },
};

await build({
  entryPoints: [here('src/main.tsx')],
  outfile: here('public/app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  jsx: 'automatic',
  minify: true,
  sourcemap: 'linked',
  // Workspace packages from their TypeScript sources, as in the tests.
  conditions: ['herald-source'],
  define: { 'process.env.NODE_ENV': '"production"' },
  plugins: [demoLib],
  logLevel: 'warning',
});
