/**
 * The user-path report's target verdicts, from measurements made up for the purpose: each goal is
 * judged for every Herald target on the embedded default that the run measured, against the
 * reference of the same round, and a goal with none is said to be unmeasured, never met.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBenchArgs, type BenchOptions } from '../src/options.ts';
import type { UserPathMeasurement, UserPhase, UserTargetId } from '../src/user-path.ts';
import { verdicts } from '../src/user-report.ts';

const N = 10_000;
const bench = parseBenchArgs(['--sizes', String(N), '--rounds', '3']) as BenchOptions;

/** Only what the verdicts read: CPU per delivery and p99 from the schedule. */
function phase(rate: number, cpuPerDeliveryUs: number, p99FromSchedule: number): UserPhase {
  return { rate, cpuPerDeliveryUs, p99FromSchedule } as unknown as UserPhase;
}

/** A target's rounds: burst CPU per delivery, p99 at 20/s and at 2/s, one triple per round. */
function rounds(target: UserTargetId, values: readonly [number, number, number][]): UserPathMeasurement[] {
  return values.map(([burst, p20, p2], i) => ({
    target,
    n: N,
    round: i + 1,
    connected: N,
    nodes: 1,
    serverPids: [],
    burst: phase(0, burst, 0),
    paced: [phase(2, 0, p2), phase(20, 0, p20)],
  }));
}

/** Three rounds that measured the same. */
function steady(target: UserTargetId, values: [number, number, number]): UserPathMeasurement[] {
  return rounds(target, [values, values, values]);
}

const rawWs = steady('ws', [10, 5000, 150]);

function row(lines: readonly string[], start: string): string | undefined {
  return lines.find((line) => line.startsWith(`| ${start} |`));
}

describe('user-path target verdicts', () => {
  it('judges `herald serve` when it is the only Herald WebSocket target of the run', () => {
    const serve = rounds('herald-ws-serve', [
      [1.5, 400, 180],
      [1.8, 500, 160],
      [1.6, 450, 200],
    ]);
    const lines = verdicts(bench, [...rawWs, ...serve]);
    const burst = row(lines, 'Herald WebSocket burst CPU/delivery ≤ 0.2× raw ws: Herald WebSocket, herald serve');
    assert.match(burst ?? '', /×0\.16 .*\| yes \(3 round\(s\)\) \|$/);
    const lone = row(lines, 'Herald WebSocket p99 from schedule at 2/s ≤ 1.0× raw ws: Herald WebSocket, herald serve');
    assert.match(lone ?? '', /×1\.20 .*\| \*\*no, by 0\.20\*\* \(3 round\(s\)\) \|$/);
    // Nothing measured the in-process target or SSE: said so, never "yes".
    assert.equal(row(lines, 'Herald WebSocket burst CPU/delivery ≤ 0.2× raw ws'), undefined);
    assert.match(
      row(lines, 'Herald SSE burst CPU/delivery ≤ 0.2× plain SSE') ?? '',
      /not measured in this run \| n\/a/,
    );
  });

  it('gives every measured target its own verdict, the in-process one under the goal’s own words', () => {
    const inProcess = steady('herald-ws', [1.5, 400, 140]);
    const workers = steady('herald-ws-workers', [2.5, 400, 140]);
    const lines = verdicts(bench, [...rawWs, ...inProcess, ...workers]);
    assert.match(row(lines, 'Herald WebSocket burst CPU/delivery ≤ 0.2× raw ws') ?? '', /×0\.15 .*\| yes/);
    assert.match(
      row(lines, 'Herald WebSocket burst CPU/delivery ≤ 0.2× raw ws: Herald WebSocket, herald serve --workers 2') ?? '',
      /×0\.25 .*\| \*\*no, by 0\.05\*\*/,
    );
    assert.match(row(lines, 'Herald WebSocket p99 from schedule at 2/s ≤ 1.0× raw ws') ?? '', /×0\.93 .*\| yes/);
  });

  it('takes each ratio against the reference of the same round', () => {
    const reference = rounds('ws', [
      [10, 5000, 100],
      [20, 5000, 200],
      [40, 5000, 400],
    ]);
    // Each round's Herald is 0.1× its own round's reference, though 4× the first round's.
    const herald = rounds('herald-ws', [
      [1, 400, 100],
      [2, 400, 200],
      [4, 400, 400],
    ]);
    const lines = verdicts(bench, [...reference, ...herald]);
    assert.match(row(lines, 'Herald WebSocket burst CPU/delivery ≤ 0.2× raw ws') ?? '', /×0\.10 \(0\.10–0\.10\)/);
  });
});
