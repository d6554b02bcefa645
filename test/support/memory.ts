/** Samples this process's resident memory while a test runs (the hub under test runs in-process). */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Runs a full garbage collection, so RSS shows what is retained rather than what the collector
 * has not got round to freeing yet. A queue that grows without bound is retained: it still shows.
 */
export function collectGarbage(): void {
  gc();
}

export interface RssReport {
  readonly beforeMb: number;
  readonly peakMb: number;
  readonly afterMb: number;
  readonly samples: number;
}

export class RssSampler {
  readonly #before: number;
  #peak: number;
  #samples = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs = 25) {
    this.#before = process.memoryUsage.rss();
    this.#peak = this.#before;
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    this.#samples++;
    const rss = process.memoryUsage.rss();
    if (rss > this.#peak) this.#peak = rss;
  }

  /** Growth of the peak over the start, in MB. */
  get growthMb(): number {
    return mb(this.#peak - this.#before);
  }

  stop(): RssReport {
    clearInterval(this.#timer);
    this.sample();
    return {
      beforeMb: mb(this.#before),
      peakMb: mb(this.#peak),
      afterMb: mb(process.memoryUsage.rss()),
      samples: this.#samples,
    };
  }
}

const mb = (bytes: number): number => Math.round((bytes / 1_048_576) * 10) / 10;
