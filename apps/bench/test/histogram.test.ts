/**
 * The latency histogram's percentiles: within its bucket width (0.1 %) of the exact ones, across
 * merged load generators, with the exact maximum; close enough to judge a ratio near 1.0.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram } from '../src/histogram.ts';

/** `q` of the sorted samples, as the histogram defines it (the rank-th smallest, rank = ceil(q n)). */
function exact(sorted: readonly number[], q: number): number {
  return sorted[Math.ceil(q * sorted.length) - 1]!;
}

describe('latency histogram', () => {
  it('gives percentiles within 0.1 % of the exact ones, merged from two load generators', () => {
    const a = new Histogram();
    const b = new Histogram();
    const samples: number[] = [];
    // 200,000 latencies from 1 ms to 250 ms (µs), spread unevenly, half recorded by each generator.
    for (let i = 0; i < 200_000; i++) {
      const us = 1000 + ((i * 7919) % 249_000) + ((i * 31) % 97) / 10;
      samples.push(us);
      (i % 2 === 0 ? a : b).record(us);
    }
    samples.sort((x, y) => x - y);
    const merged = Histogram.merge([a.toData(), b.toData()]);
    assert.equal(merged.count, samples.length);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const got = Histogram.percentile(merged, q);
      const want = exact(samples, q);
      assert.ok(Math.abs(got / want - 1) <= 0.001, `p${q * 100}: ${got} against ${want}`);
    }
    assert.equal(Histogram.percentile(merged, 1), samples[samples.length - 1]);
  });

  it('tells apart two p99s 0.5 % apart', () => {
    const near = (scale: number): number => {
      const h = new Histogram();
      for (let i = 1; i <= 10_000; i++) h.record(i * 20 * scale);
      return Histogram.percentile(h.toData(), 0.99);
    };
    const ratio = near(1.005) / near(1);
    assert.ok(ratio > 1.003 && ratio < 1.007, `ratio ${ratio}`);
  });

  it('is empty after reset', () => {
    const h = new Histogram();
    h.record(5);
    h.reset();
    assert.equal(h.count, 0);
    assert.ok(Number.isNaN(Histogram.percentile(h.toData(), 0.99)));
  });
});
