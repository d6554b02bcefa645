/**
 * Figures for docs/reliability.md: every scenario prints what it measured as a test diagnostic
 * and appends it to artifacts/reliability/figures.jsonl, so a run leaves its numbers behind.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('../../../artifacts/reliability/', import.meta.url));

export function recordFigures(t: TestContext, scenario: string, figures: Record<string, unknown>): void {
  t.diagnostic(`${scenario}: ${JSON.stringify(figures)}`);
  try {
    mkdirSync(DIR, { recursive: true });
    appendFileSync(
      `${DIR}figures.jsonl`,
      JSON.stringify({ at: new Date().toISOString(), scenario, ...figures }) + '\n',
    );
  } catch {
    // figures are a by-product; a read-only checkout still runs the tests
  }
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function pool<T, R>(
  items: Iterable<T>,
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  const iterator = items[Symbol.iterator]();
  let index = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const next = iterator.next();
      if (next.done === true) return;
      const i = index++;
      results[i] = await task(next.value, i);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

/** Environment switches of this suite. */
export const FULL = process.env.HERALD_FULL === '1';
export const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;
};
