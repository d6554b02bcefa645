/**
 * Herald under test as users run it: the `herald serve` command, with `--workers N` when N > 1
 * (a primary, N worker processes on one port, the in-machine broker; docs/scale-out.md). This
 * process starts it and answers the bench's control channel for it: the hub's whole process tree
 * is what the CPU, memory and write readings count. Publications come only from the separate
 * publisher over `POST /api/publish`: the in-process loop has no meaning for processes the bench
 * does not run code in.
 *
 * Arguments: `--workers N` (default 1). The command is apps/herald/bin/herald.js of this
 * repository, or HERALD_BENCH_CLI; it runs from its build (`npm run build`).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { processTree, treeCpuUs, treeRssBytes, treeWriteSyscalls } from './proc-tree.js';
import { serveControl } from './server-control.js';

const workersAt = process.argv.indexOf('--workers');
const workers = workersAt < 0 ? 1 : Number(process.argv[workersAt + 1]);
if (!Number.isInteger(workers) || workers < 1)
  throw new Error(`--workers wants a count, got ${process.argv[workersAt + 1]}`);

// src/ and dist/ both sit one level below apps/bench.
const cli = process.env.HERALD_BENCH_CLI ?? fileURLToPath(new URL('../../herald/bin/herald.js', import.meta.url));
if (!existsSync(cli)) throw new Error(`the herald command is not at ${cli} (set HERALD_BENCH_CLI)`);
if (!existsSync(new URL('../dist/cli.js', `file://${realpathSync(cli)}`))) {
  throw new Error(`the herald command is not built (${cli}): npm run build`);
}

const apiKey = randomBytes(24).toString('base64url');
const hub = spawn(process.execPath, [cli, 'serve', ...(workers > 1 ? ['--workers', String(workers)] : [])], {
  env: {
    ...process.env,
    // Port 0: the workers share the one the primary is given (node's cluster), read off the banner.
    PORT: '0',
    HOST: '127.0.0.1',
    HERALD_API_KEY: apiKey,
    HERALD_JWT_SECRET: randomBytes(32).toString('base64url'),
    HERALD_ANONYMOUS_CHANNELS: 'bench*',
    HERALD_LOG_LEVEL: 'error',
  },
  // The banner on stdout says every worker listens; errors go to the bench's stderr.
  stdio: ['ignore', 'pipe', 'inherit'],
});
const hubPid = hub.pid;
if (hubPid === undefined) throw new Error('herald serve did not start');
// The hub drains and exits on SIGTERM; this process ends by the bench's `exit` or a signal.
process.on('exit', () => hub.kill('SIGTERM'));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));

const port = await new Promise<number>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('herald serve did not listen within 60 s')), 60_000);
  hub.once('exit', (code, signal) => reject(new Error(`herald serve exited (${signal ?? code})`)));
  // The primary prints its banner once every worker listens (a single process, once it listens).
  let banner = '';
  const read = (chunk: Buffer): void => {
    banner += chunk.toString();
    const address = /listening on https?:\/\/[^\s]+:(\d+)/.exec(banner);
    if (address === null) return;
    clearTimeout(timer);
    hub.stdout.off('data', read);
    hub.stdout.resume();
    resolve(Number(address[1]));
  };
  hub.stdout.on('data', read);
});

/** The hub's own count, summed over its workers (any worker's /metrics answers for all). */
async function connections(): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('herald_connections{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

serveControl({
  port,
  publishPath: '/api/publish',
  apiKey,
  connections,
  measured: {
    pids: () => processTree(hubPid),
    cpuUs: () => treeCpuUs(hubPid),
    writeSyscalls: () => treeWriteSyscalls(hubPid),
    // No collection can be forced in another process: resident memory only.
    memory: async () => ({ rss: treeRssBytes(hubPid), heapUsed: Number.NaN }),
  },
  broadcast() {
    throw new Error('herald serve is measured on the user path only (a separate publisher)');
  },
});
