/**
 * `herald bench --quick` on the user path, end to end with a small scenario set: a separate
 * publisher over HTTP against the reference servers and Herald (one node, and two nodes on
 * Redis), then autocannon on POST /api/publish. Every scenario prints a row of numbers, every
 * publication reaches every subscriber, the smoke test gives no target verdicts, and no bench
 * process is left behind. It checks the instrument, not performance: no thresholds on figures.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runBench, type BenchResult } from '../src/index.ts';
import { parseBenchArgs, type BenchOptions } from '../src/options.ts';
import { USER_TARGETS } from '../src/user-path.ts';

const ARGS = [
  '--quick',
  '--scenarios',
  'user,autocannon',
  '--user-targets',
  'herald-ws,herald-sse-redis,herald-ws-workers',
  '--sizes',
  '50',
  '--rates',
  '20',
  '--autocannon-seconds',
  '1',
  '--autocannon-subscribers',
  '20',
];

describe('herald bench --quick, user path and autocannon', { timeout: 240_000 }, () => {
  let out: string;
  let result: BenchResult;
  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'herald-bench-user-'));
    const options = parseBenchArgs([...ARGS, '--out', out]) as BenchOptions;
    result = await runBench(options, `herald bench ${ARGS.join(' ')}`, () => undefined);
  });
  after(() => rm(out, { recursive: true, force: true }));

  it('runs every scenario, references included, with every publication delivered', () => {
    assert.deepEqual(result.failures, []);
    assert.equal(result.leftRunning, 0);
    assert.deepEqual(result.options.userTargets, ['ws', 'sse', 'herald-ws', 'herald-sse-redis', 'herald-ws-workers']);
    for (const id of result.options.userTargets) {
      const m = result.userPath.find((x) => x.target === id);
      assert.ok(m, `a measurement of ${id}`);
      assert.equal(m.connected, 50);
      assert.equal(m.nodes, USER_TARGETS[id].redis ? 2 : 1);
      // herald serve --workers 2: a primary and two workers, every delivery through the shared broker.
      assert.equal(m.serverPids.length, id === 'herald-ws-workers' ? 3 : m.nodes, `${id}: server processes`);
      for (const phase of [m.burst, ...m.paced]) {
        assert.equal(phase.publishFailed, 0, `${id}: every publish answered 200`);
        assert.equal(phase.delivered, phase.expected, `${id} ${phase.rate}/s: every delivery arrived`);
        assert.ok(phase.cpuPerDeliveryUs > 0 && Number.isFinite(phase.p99FromSchedule), `${id}: figures`);
      }
    }
    // Herald and the raw ws reference, once per round.
    assert.deepEqual(
      result.autocannon.map((a) => `${a.target} ${a.round}`),
      Array.from({ length: result.options.rounds }, (_, i) => [`herald-ws ${i + 1}`, `ws ${i + 1}`]).flat(),
    );
    for (const a of result.autocannon) {
      assert.ok(a.ok > 0 && a.subscribers === 20, `autocannon ${a.target} published to 20 subscribers`);
      // Every acknowledged publication reached every subscriber (a few more may have, whose
      // answers autocannon did not count as it stopped).
      assert.equal(a.subscribersDropped, 0, `autocannon ${a.target}: no subscriber was disconnected`);
      assert.ok(
        a.delivered >= a.expected,
        `autocannon ${a.target}: ${a.delivered} of ${a.expected} deliveries arrived`,
      );
    }
  });

  it('leaves no server process behind, herald serve and its workers included', async () => {
    const pids = result.userPath.flatMap((m) => m.serverPids);
    const alive = (): number[] =>
      pids.filter((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      });
    // herald serve drains on SIGTERM: give it a moment, bounded.
    for (let i = 0; i < 100 && alive().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(alive(), []);
  });

  it('prints each scenario with numbers, and no target verdicts in a smoke test', async () => {
    const markdown = await readFile(join(out, 'report.md'), 'utf8');
    assert.match(markdown, /Smoke test \(--quick\)/);
    assert.doesNotMatch(markdown, /Targets at|\| yes|\*\*no/);
    for (const id of result.options.userTargets) {
      const row = markdown.split('\n').find((l) => l.startsWith(`| ${USER_TARGETS[id].label} |`));
      assert.ok(row, `a row for ${id}`);
      assert.ok(
        row
          .split('|')
          .slice(2, -1)
          .every((c) => /\d/.test(c)),
        `numbers in every cell of "${row}"`,
      );
    }
    assert.match(markdown, /## autocannon: 50 connections, POST publish, 20 WebSocket subscribers/);
    for (const label of ['Herald WebSocket', 'raw ws, one write per subscriber'])
      assert.match(markdown, new RegExp(`^\\| ${label} \\| [\\d,]+ `, 'm'), `an autocannon row for ${label}`);
  });
});
