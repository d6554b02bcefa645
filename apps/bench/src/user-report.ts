/**
 * The report of the user-path scenarios: per subscriber count, every transport's figures as the
 * median [min–max] over rounds and ×ratio against its reference server (raw ws frame-once for
 * WebSocket and Socket.IO, plain node:http SSE for SSE) taken round by round; the in-process loop
 * as one row labeled as the best case; then the issue's targets, unless this is a smoke test.
 */
import type { Measurement } from './measure.js';
import { pacedPublications, type BenchOptions } from './options.js';
import { spread, type Spread } from './summary.js';
import { USER_TARGETS, type UserPathMeasurement, type UserPhase, type UserTargetId } from './user-path.js';

type Get = (m: UserPathMeasurement) => number | undefined;

function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(2);
}

function show(value: Spread | undefined, ratio: Spread | undefined): string {
  if (value === undefined) return 'n/a';
  let text = fmt(value.median);
  if (value.rounds > 1) text += ` [${fmt(value.min)}–${fmt(value.max)}]`;
  if (ratio !== undefined) {
    text += ` ×${ratio.median.toFixed(2)}`;
    if (ratio.rounds > 1) text += ` (${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)})`;
  }
  return text;
}

interface Figure {
  readonly value: Spread | undefined;
  readonly ratio: Spread | undefined;
}

function figure(all: readonly UserPathMeasurement[], id: UserTargetId, n: number, get: Get): Figure {
  const mine = all.filter((m) => m.target === id && m.n === n);
  const ref = USER_TARGETS[id].reference;
  const ratios: number[] = [];
  for (const m of mine) {
    const r = all.find((x) => x.target === ref && x.n === n && x.round === m.round);
    const a = get(m);
    const b = r === undefined ? undefined : get(r);
    if (id !== ref && a !== undefined && b !== undefined && b > 0) ratios.push(a / b);
  }
  return { value: spread(mine.map(get).filter((v): v is number => v !== undefined)), ratio: spread(ratios) };
}

const atRate =
  (rate: number, pick: (p: UserPhase) => number): Get =>
  (m) => {
    const p = m.paced.find((x) => x.rate === rate);
    return p === undefined ? undefined : pick(p);
  };

export function userPathMarkdown(
  bench: BenchOptions,
  all: readonly UserPathMeasurement[],
  inProcess: readonly Measurement[],
): string[] {
  const lines: string[] = [];
  if (all.length === 0) return lines;
  lines.push(`## What users run: a separate publisher over HTTP`, ``);
  lines.push(
    `Publications come from a separate process: Herald \`POST /api/publish\`, the references their own \`POST /publish\`. ` +
      `Burst: ${bench.burst} publications, ${bench.inFlight} requests in flight. Paced, open loop: ` +
      `${bench.rates.map((rate) => `${pacedPublications(bench, rate)} publications at ${rate}/s`).join(', ')}. CPU/delivery is the server processes' CPU (both nodes with Redis) per delivery. ` +
      `Ratios: against raw ws frame-once (WebSocket, Socket.IO) or plain SSE (SSE), in the same round.`,
    ``,
  );
  if (bench.quick)
    lines.push(`**Smoke test (--quick)**: too small and too short to judge any target; no verdicts.`, ``);
  const cols: [string, Get][] = [
    ['burst CPU/delivery (µs)', (m) => m.burst.cpuPerDeliveryUs],
    ['burst deliveries/s', (m) => m.burst.throughput],
    ['burst p99 from request (ms)', (m) => m.burst.p99],
    ['burst publish ack p99 (ms)', (m) => m.burst.ackP99],
  ];
  for (const rate of bench.rates) {
    cols.push([`${rate}/s p99 from request (ms)`, atRate(rate, (p) => p.p99)]);
    cols.push([`${rate}/s p99 from schedule (ms)`, atRate(rate, (p) => p.p99FromSchedule)]);
    cols.push([`${rate}/s CPU/delivery (µs)`, atRate(rate, (p) => p.cpuPerDeliveryUs)]);
  }
  for (const n of bench.sizes) {
    if (!all.some((m) => m.n === n)) continue;
    lines.push(`### ${n.toLocaleString('en-US')} subscribers`, ``);
    lines.push(`| Transport | ${cols.map(([label]) => label).join(' | ')} |`);
    lines.push(`| --- | ${cols.map(() => '---:').join(' | ')} |`);
    for (const id of bench.userTargets) {
      const cells = cols.map(([, get]) => {
        const f = figure(all, id, n, get);
        return show(f.value, f.ratio);
      });
      lines.push(`| ${USER_TARGETS[id].label} | ${cells.join(' | ')} |`);
    }
    const best = inProcessRow(inProcess, n);
    if (best !== undefined)
      lines.push(`| Herald WebSocket: best case, in-process loop | ${best} |${' n/a |'.repeat(cols.length - 1)}`);
    const incomplete = all.filter(
      (m) => m.n === n && [m.burst, ...m.paced].some((p) => !p.complete || p.publishFailed > 0),
    );
    for (const m of incomplete)
      lines.push(
        `- ${USER_TARGETS[m.target].label}, round ${m.round}: ${[m.burst, ...m.paced]
          .map(
            (p) =>
              `${p.rate === 0 ? 'burst' : `${p.rate}/s`} ${p.delivered}/${p.expected} delivered, ${p.publishFailed} publish failures, ${p.skipped} skipped`,
          )
          .join('; ')}`,
      );
    lines.push(``);
  }
  if (!bench.quick) lines.push(...verdicts(bench, all));
  return lines;
}

/** The in-process burst, Herald WebSocket against raw ws in the same round: the best case. */
function inProcessRow(inProcess: readonly Measurement[], n: number): string | undefined {
  const mine = inProcess.filter((m) => m.target === 'herald-ws' && m.n === n);
  if (mine.length === 0) return undefined;
  const ratios = mine.flatMap((m) => {
    const r = inProcess.find((x) => x.target === 'ws' && x.n === n && x.round === m.round);
    return r === undefined ? [] : [m.burst.cpuPerDeliveryUs / r.burst.cpuPerDeliveryUs];
  });
  return show(spread(mine.map((m) => m.burst.cpuPerDeliveryUs)), spread(ratios));
}

/**
 * Herald's targets that run on the embedded default, by transport: each goal is judged for every
 * one of them the run measured (`HeraldServer`, `herald serve`, its workers), so a run of only
 * `herald serve` still gets verdicts, and a run of several compares them.
 */
const WS_TARGETS: readonly UserTargetId[] = ['herald-ws', 'herald-ws-serve', 'herald-ws-workers'];
const SSE_TARGETS: readonly UserTargetId[] = ['herald-sse'];

export function verdicts(bench: BenchOptions, all: readonly UserPathMeasurement[]): string[] {
  const n = Math.max(...bench.sizes);
  const checks: [string, readonly UserTargetId[], Get, number][] = [
    ['Herald WebSocket burst CPU/delivery ≤ 0.2× raw ws', WS_TARGETS, (m) => m.burst.cpuPerDeliveryUs, 0.2],
    ['Herald SSE burst CPU/delivery ≤ 0.2× plain SSE', SSE_TARGETS, (m) => m.burst.cpuPerDeliveryUs, 0.2],
    ['Herald WebSocket p99 from schedule at 20/s ≤ 0.5× raw ws', WS_TARGETS, atRate(20, (p) => p.p99FromSchedule), 0.5],
    ['Herald SSE p99 from schedule at 20/s ≤ 0.5× plain SSE', SSE_TARGETS, atRate(20, (p) => p.p99FromSchedule), 0.5],
    ['Herald WebSocket p99 from schedule at 2/s ≤ 1.0× raw ws', WS_TARGETS, atRate(2, (p) => p.p99FromSchedule), 1.0],
  ];
  const lines = [`### Targets at ${n.toLocaleString('en-US')} subscribers (median ratio over rounds)`, ``];
  lines.push(`| Target | Measured | Met |`, `| --- | --- | --- |`);
  for (const [goal, ids, get, bound] of checks) {
    const judged = ids.flatMap((id) => {
      const f = figure(all, id, n, get);
      return f.ratio === undefined ? [] : [{ id, f, ratio: f.ratio }];
    });
    if (judged.length === 0) lines.push(`| ${goal} | not measured in this run | n/a |`);
    for (const { id, f, ratio } of judged) {
      // The first of a transport's targets is the goal's own wording; the others name themselves.
      const label = id === ids[0] ? goal : `${goal}: ${USER_TARGETS[id].label}`;
      const met = ratio.median <= bound;
      const by = met ? '' : `, by ${(ratio.median - bound).toFixed(2)}`;
      lines.push(`| ${label} | ${show(f.value, ratio)} | ${met ? 'yes' : `**no${by}**`} (${ratio.rounds} round(s)) |`);
    }
  }
  lines.push(``);
  return lines;
}
