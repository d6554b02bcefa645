/**
 * The report of the drop-and-resume scenario: per client count, one row per target, rounds
 * pooled (every client × publication pair of every round counts once). The three shares add up
 * to 100 %: each pair was delivered exactly once, never, or more than once.
 */
import { CUT_MAX_MS, CUT_MIN_MS, DROP_TARGETS, dropSizes, type DropMeasurement, type DropTargetId } from './drop.js';
import type { BenchOptions } from './options.js';

export interface DropRow {
  readonly target: DropTargetId;
  readonly n: number;
  readonly rounds: number;
  readonly perClient: number;
  readonly pairs: number;
  readonly exactlyOnce: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  readonly cuts: number;
  readonly reconnects: number;
  readonly notRecovered: number;
  readonly publishFailed: number;
}

/** Pools the rounds of one target at one client count; undefined when none was measured. */
export function dropRow(all: readonly DropMeasurement[], target: DropTargetId, n: number): DropRow | undefined {
  const mine = all.filter((m) => m.target === target && m.n === n);
  if (mine.length === 0) return undefined;
  const sum = (get: (m: DropMeasurement) => number): number => mine.reduce((s, m) => s + get(m), 0);
  return {
    target,
    n,
    rounds: mine.length,
    perClient: (mine[0] as DropMeasurement).perClient,
    pairs: sum((m) => m.clients * m.perClient),
    exactlyOnce: sum((m) => m.exactlyOnce),
    lost: sum((m) => m.lost),
    duplicated: sum((m) => m.duplicated),
    outOfOrder: sum((m) => m.outOfOrder),
    cuts: sum((m) => m.cuts),
    reconnects: sum((m) => m.reconnects),
    notRecovered: sum((m) => m.notRecovered),
    publishFailed: sum((m) => m.publishFailed + m.publishSkipped),
  };
}

/** A percentage that never rounds a loss down to nothing nor a near-miss up to 100 %; short of all, with the count. */
function share(part: number, whole: number, withCount: boolean): string {
  if (whole === 0) return 'n/a';
  const pct = (100 * part) / whole;
  const text = part > 0 && pct < 0.01 ? '< 0.01 %' : part < whole && pct > 99.99 ? '> 99.99 %' : `${pct.toFixed(2)} %`;
  return withCount && part > 0 ? `${text} (${part.toLocaleString('en-US')})` : text;
}

export function dropMarkdown(bench: BenchOptions, all: readonly DropMeasurement[]): string[] {
  if (all.length === 0) return [];
  const first = all[0] as DropMeasurement;
  const lines = [`## Drop and resume: connections cut while publishing`, ``];
  lines.push(
    `A separate publisher sends ${first.perClient} numbered publications (${first.rate}/s for ${first.seconds} s) over each ` +
      `target's publish route; meanwhile every client's connection is cut from the client side (its TCP connection ` +
      `destroyed), first within ${CUT_MIN_MS / 1000} s, then every ${CUT_MIN_MS / 1000}–${CUT_MAX_MS / 1000} s, and the ` +
      `client reconnects as its library does. Shares are of client × publication pairs, rounds pooled. ` +
      `Out of order: first deliveries after a later publication (in the hub's order, its offsets, for Herald; in ` +
      `the publisher's numbering for the references, where two publishes in flight may legitimately reach the ` +
      `server in the other order). Not recovered: reconnects after which the library ` +
      `said the missed publications were not replayed.`,
    ``,
  );
  for (const n of dropSizes(bench)) {
    if (!all.some((m) => m.n === n)) continue;
    lines.push(`### ${n.toLocaleString('en-US')} clients`, ``);
    lines.push(
      `| Transport | publications per client | exactly once | lost | duplicated | out of order | cuts | reconnects | not recovered |`,
      `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
    );
    for (const id of bench.dropTargets) {
      const r = dropRow(all, id, n);
      const target = DROP_TARGETS[id];
      if (r === undefined) {
        lines.push(`| ${target.label} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |`);
        continue;
      }
      const cells = [
        String(r.perClient),
        share(r.exactlyOnce, r.pairs, false),
        share(r.lost, r.pairs, true),
        share(r.duplicated, r.pairs, true),
        r.outOfOrder.toLocaleString('en-US'),
        r.cuts.toLocaleString('en-US'),
        r.reconnects.toLocaleString('en-US'),
        target.resumes ? r.notRecovered.toLocaleString('en-US') : 'no resume',
      ];
      lines.push(`| ${target.label} | ${cells.join(' | ')} |`);
    }
    for (const m of all.filter((x) => x.n === n && (x.publishFailed > 0 || x.publishSkipped > 0 || !x.settled)))
      lines.push(
        `- ${DROP_TARGETS[m.target].label}, round ${m.round}: ${m.publishFailed} publish failures, ${m.publishSkipped} skipped` +
          `${m.settled ? '' : `, ${m.clients - m.liveAtEnd} clients not back when the wait ended`}`,
      );
    lines.push(``);
  }
  return lines;
}
