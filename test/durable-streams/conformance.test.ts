/**
 * The Durable Streams server conformance suite (@durable-streams/server-conformance-tests 0.3.6,
 * its programmatic runConformanceTests under vitest) against live `herald serve` processes, on the
 * memory broker and on Redis, and against the reference server @durable-streams/server 0.3.7, in
 * one vitest run (conformance/). Herald must pass at least as many tests as the reference; every
 * test Herald fails is printed with its reason.
 *
 *   HERALD_REQUIRE_SERVICES=1 node scripts/run-tests.mjs test/durable-streams/conformance
 *
 * DS_CONFORMANCE_KEEP=<file> keeps vitest's JSON report (every test's outcome and message).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { REQUIRE_SERVICES, SERVICES } from '../support/services.ts';
import { HubNode, ROOT, buildOnce, deleteRedisPrefix, uniquePrefix } from '../cluster/support.ts';

const HERE = join(ROOT, 'test/durable-streams/conformance');
const VITEST = join(ROOT, 'node_modules/vitest/vitest.mjs');
/** What Herald runs with for the suite: no auth (the suite sends none), any origin, the suite's long-poll. */
const ENV = { HERALD_DURABLE_STREAMS: 'open', HERALD_ORIGINS: '*', HERALD_DURABLE_STREAMS_LONG_POLL: '0.5' };

interface Outcome {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly failures: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
}

interface VitestReport {
  testResults: Array<{
    name: string;
    message?: string;
    assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }>;
  }>;
}

const prefix = uniquePrefix();
const nodes: HubNode[] = [];

before(async () => {
  await buildOnce();
});

after(async () => {
  for (const node of nodes) node.kill();
  if (await SERVICES.redis.check()) await deleteRedisPrefix('redis://127.0.0.1:6379', prefix);
});

it('Herald passes at least as many conformance tests as the reference server', { timeout: 300_000 }, async (t) => {
  const redis = await SERVICES.redis.check();
  if (!redis && REQUIRE_SERVICES) throw new Error(`needs ${SERVICES.redis.hint} (HERALD_REQUIRE_SERVICES=1)`);
  const memory = await HubNode.start('memory', { broker: 'memory', env: ENV });
  nodes.push(memory);
  const targets: Record<string, string> = { DS_CONFORMANCE_HERALD_MEMORY: `${memory.url}/ds` };
  if (redis) {
    const onRedis = await HubNode.start('redis', { broker: `redis://127.0.0.1:6379/0?prefix=${prefix}`, env: ENV });
    nodes.push(onRedis);
    targets.DS_CONFORMANCE_HERALD_REDIS = `${onRedis.url}/ds`;
  } else {
    t.diagnostic('no Redis: the suite runs on the memory broker only');
  }
  const report = await runVitest(targets, redis ? [] : ['herald-redis']);
  const outcomes = new Map(
    ['herald-memory', 'herald-redis', 'reference'].map((target) => [target, outcome(report, target)]),
  );
  for (const [target, o] of outcomes) {
    if (o.passed + o.failed === 0) continue;
    t.diagnostic(`${target}: ${o.passed} passed, ${o.failed} failed, ${o.skipped} skipped`);
    for (const f of o.failures) t.diagnostic(`  ${target} fails "${f.name}": ${f.reason}`);
  }
  const reference = outcomes.get('reference') as Outcome;
  assert.ok(reference.passed > 300, `the reference ran (${reference.passed} passed)`);
  for (const target of redis ? ['herald-memory', 'herald-redis'] : ['herald-memory']) {
    const herald = outcomes.get(target) as Outcome;
    assert.ok(
      herald.passed >= reference.passed,
      `${target} passes ${herald.passed}, the reference ${reference.passed}; Herald fails: ${herald.failures
        .map((f) => `${f.name} (${f.reason})`)
        .join('; ')}`,
    );
  }
});

/** One vitest run over the targets' files side by side; resolves with its JSON report. */
async function runVitest(env: Record<string, string>, exclude: readonly string[]): Promise<VitestReport> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-conformance-'));
  const output = join(dir, 'report.json');
  try {
    const args = [
      VITEST,
      'run',
      '--config',
      join(HERE, 'vitest.config.mjs'),
      '--reporter=json',
      `--outputFile=${output}`,
      ...exclude.map((target) => `--exclude=${target}.conformance.mjs`),
    ];
    const child = spawn(process.execPath, args, {
      cwd: HERE,
      env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000)));
    child.stderr.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000)));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    try {
      if (process.env.DS_CONFORMANCE_KEEP !== undefined)
        writeFileSync(process.env.DS_CONFORMANCE_KEEP, readFileSync(output));
      return JSON.parse(readFileSync(output, 'utf8')) as VitestReport;
    } catch {
      throw new Error(`vitest wrote no report (exit ${code}):\n${log}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function outcome(report: VitestReport, target: string): Outcome {
  const file = report.testResults.find((r) => r.name.endsWith(`${target}.conformance.mjs`));
  const results = file?.assertionResults ?? [];
  const failures = results
    .filter((r) => r.status === 'failed')
    .map((r) => ({
      name: r.fullName.replace(`${target} `, ''),
      reason: (r.failureMessages[0] ?? file?.message ?? '').split('\n')[0]?.slice(0, 300) ?? '',
    }));
  return {
    passed: results.filter((r) => r.status === 'passed').length,
    failed: failures.length,
    skipped: results.filter((r) => r.status === 'skipped' || r.status === 'pending' || r.status === 'todo').length,
    failures,
  };
}
