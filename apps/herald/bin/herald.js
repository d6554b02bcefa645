#!/usr/bin/env node
// Launcher kept in git so npm links the `herald` command before the first build.
import { main } from '../dist/cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`herald: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
