// vitest for the Durable Streams conformance suite only (the rest of the tests use node:test).
// One file per target, run side by side: most of the suite's time is waiting (TTLs, long-polls).
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export default {
  cacheDir: join(tmpdir(), 'herald-vitest-cache'),
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['*.conformance.mjs'],
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
};
