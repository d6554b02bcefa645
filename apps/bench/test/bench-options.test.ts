/**
 * How many publications a latency phase sends: a slow rate's phase is long enough that its p99
 * is not one publication's tail, `--quick` keeps its short phases, and results written before the
 * floor existed read as they were measured.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pacedPublications, parseBenchArgs, type BenchOptions } from '../src/options.ts';

const parse = (...args: string[]): BenchOptions => parseBenchArgs(args) as BenchOptions;

describe('latency phase length', () => {
  it('sends at least 30 publications at a slow rate, rate × seconds at a fast one', () => {
    const bench = parse();
    assert.equal(pacedPublications(bench, 2), 30);
    assert.equal(pacedPublications(bench, 20), 100);
  });

  it('follows --min-publications and --latency-seconds', () => {
    assert.equal(pacedPublications(parse('--min-publications', '50'), 2), 50);
    assert.equal(pacedPublications(parse('--latency-seconds', '20'), 2), 40);
  });

  it('keeps --quick short', () => {
    assert.equal(pacedPublications(parse('--quick'), 2), 4);
    assert.equal(pacedPublications(parse('--quick', '--rates', '1'), 1), 3);
  });

  it('reads options of an older results.json (no floor) as they ran', () => {
    assert.equal(pacedPublications({ latencySeconds: 5 }, 2), 10);
    assert.equal(pacedPublications({ latencySeconds: 1 }, 1), 3);
  });

  it('refuses a floor that is not a positive count', () => {
    assert.throws(() => parse('--min-publications', '0'), /min-publications/);
    assert.throws(() => parse('--min-publications', 'many'), /min-publications/);
  });
});
