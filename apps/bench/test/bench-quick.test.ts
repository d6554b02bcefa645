/**
 * `herald bench --quick` end to end: every server and load generator starts, every target gets
 * a row of numbers, the report files are written, and no bench process is left behind. This
 * checks the instrument, not performance: there are no thresholds on the figures.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runBench, type BenchResult } from '../src/index.ts';
import { parseBenchArgs, type BenchOptions } from '../src/options.ts';
import { TARGET_IDS, TARGETS } from '../src/targets.ts';

describe('herald bench --quick', { timeout: 300_000 }, () => {
  let out: string;
  let result: BenchResult;
  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'herald-bench-'));
    // The user-path and autocannon scenarios are run by bench-user-path.test.ts.
    const options = parseBenchArgs(['--quick', '--scenarios', 'inprocess', '--out', out]) as BenchOptions;
    result = await runBench(options, 'herald bench --quick --scenarios inprocess', () => undefined);
  });
  after(() => rm(out, { recursive: true, force: true }));

  it('measures every available target at every size without failures, and stops every process', () => {
    assert.deepEqual(result.failures, []);
    assert.equal(result.leftRunning, 0);
    const expected = TARGET_IDS.filter((t) => result.unavailable[t] === undefined);
    // Only the optional Socket.IO plugin may be missing from a build.
    assert.ok(expected.length >= TARGET_IDS.length - 1);
    for (const n of result.options.sizes) {
      for (const target of expected) {
        const m = result.measurements.find((x) => x.target === target && x.n === n);
        assert.ok(m, `a measurement of ${target} at N=${n}`);
        assert.equal(m.connected, n, `${target}: every client connected`);
        for (const [name, value] of Object.entries({
          setupRate: m.setupRate,
          rssPerConnKiB: m.rssPerConnKiB,
          heapPerConnKiB: m.heapPerConnKiB,
          throughput: m.burst.throughput,
          cpuPerDeliveryUs: m.burst.cpuPerDeliveryUs,
        })) {
          assert.ok(Number.isFinite(value), `${target} ${name} is a number (got ${value})`);
        }
        assert.ok(m.setupRate > 0 && m.burst.throughput > 0 && m.burst.serverCpuUs > 0, `${target}: positive rates`);
        assert.equal(m.burst.delivered, m.burst.expected, `${target}: the whole burst arrived`);
        assert.deepEqual(
          m.latency.map((l) => l.rate),
          [...result.options.rates],
        );
        for (const l of m.latency) {
          assert.equal(l.samples, l.expected, `${target} at ${l.rate}/s: a latency sample per delivery`);
          for (const q of [l.p50, l.p95, l.p99, l.max]) assert.ok(Number.isFinite(q) && q >= 0);
          assert.ok(l.p50 <= l.p99 && l.p99 <= l.max);
        }
      }
    }
    assert.ok(result.capacity, 'the capacity check ran');
    assert.equal(result.capacity.connected, result.options.capacity);
    assert.ok(result.capacity.burst.complete);
  });

  it('writes a Markdown table with a row of numbers per target, the JSON and the SVG chart', async () => {
    const markdown = await readFile(join(out, 'report.md'), 'utf8');
    assert.equal(markdown.trimEnd(), result.markdown.trimEnd());
    for (const target of TARGET_IDS) {
      const inProcess = markdown.slice(markdown.indexOf('## Best case, in-process loop'));
      const rows = inProcess.split('\n').filter((line) => line.startsWith(`| ${TARGETS[target].label} |`));
      // One row in the main table and one per latency rate, for every size.
      assert.equal(rows.length, result.options.sizes.length * (1 + result.options.rates.length), target);
      for (const row of rows) {
        const cells = row.split('|').slice(2, -1);
        if (result.unavailable[target] !== undefined) assert.ok(cells.every((c) => c.trim() === 'n/a'));
        else
          assert.ok(
            cells.every((c) => /\d/.test(c)),
            `${target}: numbers in every cell of "${row}"`,
          );
      }
    }
    const json = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    assert.equal(json.measurements.length, result.measurements.length);
    assert.ok(Array.isArray(json.summary) && json.summary.length > 0);
    const svg = await readFile(join(out, 'ratios.svg'), 'utf8');
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
  });
});
