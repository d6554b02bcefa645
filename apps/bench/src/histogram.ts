/**
 * Latency histogram with logarithmic buckets 0.1 % wide, from 1 us to about 10^4 s. Load
 * generators record into their own and send the non-empty buckets; the orchestrator merges
 * them, so percentiles cover every delivery of every client without shipping raw samples.
 *
 * Why 0.1 %: the 2/s target compares Herald's p99 with raw ws's at a ratio of 1.0, and the two
 * are within a few per cent of each other; with 1 % buckets both medians fell in the same bucket
 * and a round's ratio moved by whole buckets (docs/benchmarks.md). 23,000 counters, 92 KiB per
 * histogram, two per load generator.
 */
const STEP = Math.log(1.001);
const BUCKETS = Math.ceil(Math.log(1e10) / STEP) + 1;

/** Non-empty buckets as `[index, count]` pairs, plus the exact maximum (us). */
export interface HistogramData {
  readonly buckets: readonly (readonly [number, number])[];
  readonly count: number;
  readonly maxUs: number;
}

export class Histogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #max = 0;

  record(us: number): void {
    const v = us < 1 ? 1 : us;
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(v) / STEP));
    this.#counts[i] = (this.#counts[i] ?? 0) + 1;
    this.#count++;
    if (us > this.#max) this.#max = us;
  }

  get count(): number {
    return this.#count;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#max = 0;
  }

  toData(): HistogramData {
    const buckets: [number, number][] = [];
    this.#counts.forEach((c, i) => {
      if (c > 0) buckets.push([i, c]);
    });
    return { buckets, count: this.#count, maxUs: this.#max };
  }

  static merge(parts: readonly HistogramData[]): HistogramData {
    const counts = new Map<number, number>();
    let count = 0;
    let maxUs = 0;
    for (const part of parts) {
      for (const [i, c] of part.buckets) counts.set(i, (counts.get(i) ?? 0) + c);
      count += part.count;
      maxUs = Math.max(maxUs, part.maxUs);
    }
    return { buckets: [...counts].sort((a, b) => a[0] - b[0]), count, maxUs };
  }

  /** The value (us) below which `q` (0..1) of the samples fall; the exact maximum for q = 1. */
  static percentile(data: HistogramData, q: number): number {
    if (data.count === 0) return Number.NaN;
    if (q >= 1) return data.maxUs;
    const rank = Math.ceil(q * data.count);
    let seen = 0;
    for (const [i, c] of data.buckets) {
      seen += c;
      if (seen >= rank) return Math.min(data.maxUs, Math.exp((i + 0.5) * STEP));
    }
    return data.maxUs;
  }
}
