/**
 * The bench report: Markdown tables (figures as median [min-max] and ratio against raw `ws`),
 * the target checks, a JSON file with every raw measurement, and a hand-written SVG chart.
 */
import type { Measurement } from './measure.js';
import { pacedPublications, type BenchOptions } from './options.js';
import { cell, metricDefs, spread, type Cell, type MetricDef, type Spread } from './summary.js';
import { BASELINE, TARGETS, type TargetId } from './targets.js';
import { AUTOCANNON_LABELS, type AutocannonResult, type AutocannonTarget } from './autocannon-load.js';
import type { DropMeasurement } from './drop.js';
import { dropMarkdown } from './drop-report.js';
import type { UserPathMeasurement } from './user-path.js';
import { userPathMarkdown } from './user-report.js';

export interface RunInfo {
  readonly command: string;
  readonly startedAt: string;
  readonly seconds: number;
  readonly node: string;
  readonly cpus: string;
  readonly loadAverage: readonly number[];
  readonly serverFdLimit: number;
  readonly clientFdLimit: number;
  readonly unavailable: Partial<Record<TargetId, string>>;
  readonly failures: readonly string[];
}

export interface Report {
  readonly markdown: string;
  readonly json: string;
  readonly svg: string;
}

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(digits);
}

function formatCell(c: Cell, metric: MetricDef, withRatio: boolean): string {
  if (c.value === undefined) return 'n/a';
  const v = c.value;
  let text = fmt(v.median, metric.digits);
  if (v.rounds > 1) text += ` [${fmt(v.min, metric.digits)}–${fmt(v.max, metric.digits)}]`;
  if (withRatio && c.ratio !== undefined) {
    text += ` ×${c.ratio.median.toFixed(2)}`;
    if (c.ratio.rounds > 1) text += ` (${c.ratio.min.toFixed(2)}–${c.ratio.max.toFixed(2)})`;
  }
  return text;
}

function row(cells: readonly string[]): string {
  return `| ${cells.join(' | ')} |`;
}

interface Check {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

export function buildReport(
  bench: BenchOptions,
  all: readonly Measurement[],
  capacity: Measurement | undefined,
  info: RunInfo,
  userPath: readonly UserPathMeasurement[] = [],
  autocannon: readonly AutocannonResult[] = [],
  drop: readonly DropMeasurement[] = [],
): Report {
  const metrics = metricDefs(bench.rates);
  const main = metrics.filter((m) => !m.key.includes('@'));
  const lines: string[] = [];
  lines.push(`# herald bench`, ``);
  lines.push(`- command: \`${info.command}\``);
  lines.push(`- started ${info.startedAt}, took ${Math.round(info.seconds)} s; node ${info.node}; ${info.cpus}`);
  lines.push(`- load average at start: ${info.loadAverage.map((l) => l.toFixed(2)).join(', ')}`);
  // NaN when nothing measured it (written to results.json as null).
  const fdLimit = info.serverFdLimit as number | null;
  if (fdLimit !== null && !Number.isNaN(fdLimit))
    lines.push(
      `- open-file limit obtained: server ${info.serverFdLimit}, load generators ${info.clientFdLimit} (raised with \`ulimit -n\` where allowed)`,
    );
  lines.push(
    `- ${bench.rounds} round(s); burst ${bench.burst} × ${bench.payloadBytes} B publications; latency at ${bench.rates.map((rate) => `${rate}/s (${pacedPublications(bench, rate)} broadcasts)`).join(', ')}`,
  );
  lines.push(
    `- cells: median [min–max over rounds] ×ratio against raw ws measured in the same round (median, (min–max))`,
  );
  for (const [t, why] of Object.entries(info.unavailable))
    lines.push(`- ${TARGETS[t as TargetId].label}: n/a (${why})`);
  for (const f of info.failures) lines.push(`- failed: ${f}`);
  lines.push(``);

  if (bench.quick) lines.push(`**Smoke test (--quick)**: figures from a small, short run; no target verdicts.`, ``);
  lines.push(...userPathMarkdown(bench, userPath, all));
  lines.push(...autocannonMarkdown(bench, autocannon));

  lines.push(...dropMarkdown(bench, drop));

  const targets = bench.targets;
  if (all.length > 0) {
    lines.push(
      `## Best case, in-process loop`,
      ``,
      `The server publishes a burst in one synchronous loop inside its own process (Herald: \`hub.publish\`), and ` +
        `paced rates from a timer there. No user publishes this way; it is the floor of the cost per delivery.`,
      ``,
    );
  }
  for (const n of all.length > 0 ? bench.sizes : []) {
    lines.push(`### ${n.toLocaleString('en-US')} subscribers, in-process loop`, ``);
    lines.push(row(['Transport', ...main.map((m) => `${m.label} (${m.unit})`)]));
    lines.push(row(['---', ...main.map(() => '---:')]));
    for (const t of targets) {
      if (info.unavailable[t] !== undefined) {
        lines.push(row([TARGETS[t].label, ...main.map(() => 'n/a')]));
        continue;
      }
      lines.push(
        row([TARGETS[t].label, ...main.map((m) => formatCell(cell(all, t, n, m, BASELINE), m, t !== BASELINE))]),
      );
    }
    lines.push(``);
    lines.push(row(['Transport', 'Rate', 'p50 (ms)', 'p95 (ms)', 'p99 (ms)', 'max (ms)', 'CPU/delivery (µs)']));
    lines.push(row(['---', '---:', '---:', '---:', '---:', '---:', '---:']));
    for (const t of targets) {
      for (const rate of bench.rates) {
        const qs = ['p50', 'p95', 'p99', 'max', 'cpu'].map(
          (q) => metrics.find((m) => m.key === `${q}@${rate}`) as MetricDef,
        );
        const cells =
          info.unavailable[t] !== undefined
            ? qs.map(() => 'n/a')
            : qs.map((m) => formatCell(cell(all, t, n, m, BASELINE), m, t !== BASELINE));
        lines.push(row([TARGETS[t].label, `${rate}/s`, ...cells]));
      }
    }
    lines.push(``);
  }

  if (capacity !== undefined) {
    const ok = capacity.connected === bench.capacity && capacity.burst.complete;
    lines.push(`## Capacity: ${bench.capacity.toLocaleString('en-US')} connections on one Herald process`, ``);
    lines.push(
      `Herald WebSocket held ${capacity.connected.toLocaleString('en-US')} of ${bench.capacity.toLocaleString('en-US')} clients ` +
        `(the hub counted ${capacity.serverConnections.toLocaleString('en-US')}) from ${capacity.loadGenerators} load-generator processes; ` +
        `setup ${fmt(capacity.setupRate, 0)} conn/s, ${fmt(capacity.rssPerConnKiB, 1)} KiB RSS and ${fmt(capacity.heapPerConnKiB, 1)} KiB heap per idle connection; ` +
        `a burst of ${capacity.burst.publications} reached ${capacity.burst.delivered.toLocaleString('en-US')} of ${capacity.burst.expected.toLocaleString('en-US')} deliveries ` +
        `(${fmt(capacity.burst.throughput, 0)}/s, ${fmt(capacity.burst.cpuPerDeliveryUs, 2)} µs CPU each). Server fd limit ${capacity.serverFdLimit}. ${ok ? 'OK' : 'NOT MET'}.`,
      ``,
    );
  }

  const checks = bench.quick || all.length === 0 ? [] : targetChecks(bench, all, capacity);
  if (checks.length > 0) {
    const n = Math.max(...bench.sizes);
    lines.push(`## Targets at ${n.toLocaleString('en-US')} subscribers`, ``);
    lines.push(row(['Target', 'Measured (median, min–max over rounds)', 'Met']));
    lines.push(row(['---', '---', '---']));
    for (const c of checks) lines.push(row([c.goal, c.measured, c.met === undefined ? 'n/a' : c.met ? 'yes' : 'no']));
    lines.push(``);
  }

  const markdown = lines.join('\n');
  const json = JSON.stringify(
    {
      info,
      options: bench,
      measurements: all,
      capacity: capacity ?? null,
      checks,
      summary: summaryJson(bench, all),
      userPath,
      autocannon,
      drop,
    },
    null,
    2,
  );
  return { markdown, json, svg: ratioChart(bench, all, info) };
}

function summaryJson(bench: BenchOptions, all: readonly Measurement[]): object[] {
  const out: object[] = [];
  for (const n of bench.sizes) {
    for (const t of bench.targets) {
      for (const m of metricDefs(bench.rates)) {
        const c = cell(all, t, n, m, BASELINE);
        if (c.value !== undefined) out.push({ n, target: t, metric: m.key, unit: m.unit, ...c });
      }
    }
  }
  return out;
}

function targetChecks(bench: BenchOptions, all: readonly Measurement[], capacity: Measurement | undefined): Check[] {
  const n = Math.max(...bench.sizes);
  const defs = metricDefs(bench.rates);
  const def = (key: string): MetricDef | undefined => defs.find((d) => d.key === key);
  const checks: Check[] = [];
  const ratio = (goal: string, t: TargetId, ref: TargetId, key: string, limit: number, atLeast = false): void => {
    const metric = def(key);
    if (metric === undefined || !bench.targets.includes(t) || !bench.targets.includes(ref)) return;
    const r = cell(all, t, n, metric, ref).ratio;
    checks.push({
      goal,
      measured: r === undefined ? 'n/a' : `×${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`,
      met: r === undefined ? undefined : atLeast ? r.median >= limit : r.median <= limit,
    });
  };
  const absolute = (goal: string, t: TargetId, key: string, limit: number): void => {
    const metric = def(key);
    if (metric === undefined || !bench.targets.includes(t)) return;
    const v = cell(all, t, n, metric, BASELINE).value;
    checks.push({
      goal,
      measured: v === undefined ? 'n/a' : `${fmt(v.median, 1)} ${metric.unit} (${fmt(v.min, 1)}–${fmt(v.max, 1)})`,
      met: v === undefined ? undefined : v.median <= limit,
    });
  };
  ratio('Herald WS server CPU per delivery ≤ 1.0× raw ws', 'herald-ws', 'ws', 'cpuPerDeliveryUs', 1.0);
  ratio('Herald WS server CPU per delivery ≤ 0.5× raw ws in bursts (aim)', 'herald-ws', 'ws', 'cpuPerDeliveryUs', 0.5);
  const slowestRate = Math.min(...bench.rates);
  ratio(
    `Herald WS server CPU per delivery, one publication at a time (${slowestRate}/s) ≤ 1.0× raw ws`,
    'herald-ws',
    'ws',
    `cpu@${slowestRate}`,
    1.0,
  );
  ratio('Herald SSE server CPU per delivery ≤ 1.0× plain SSE', 'herald-sse', 'sse', 'cpuPerDeliveryUs', 1.0);
  ratio('Herald SSE fan-out throughput ≥ 1.8× Socket.IO', 'herald-sse', 'socketio', 'throughput', 1.8, true);
  absolute('Herald WS idle RSS per connection ≤ 8 KiB', 'herald-ws', 'rssPerConnKiB', 8);
  absolute('Herald SSE idle RSS per connection ≤ 12 KiB', 'herald-sse', 'rssPerConnKiB', 12);
  ratio('Herald WS connection setup ≥ 0.9× raw ws', 'herald-ws', 'ws', 'setupRate', 0.9, true);
  const slowest = Math.min(...bench.rates);
  ratio(`Herald WS p99 latency at ${slowest}/s ≤ 1.1× raw ws`, 'herald-ws', 'ws', `p99@${slowest}`, 1.1);
  if (capacity !== undefined) {
    checks.push({
      goal: `${bench.capacity.toLocaleString('en-US')} concurrent connections on one process`,
      measured: `${capacity.connected.toLocaleString('en-US')} held, burst ${capacity.burst.complete ? 'complete' : 'incomplete'}`,
      met: capacity.connected === bench.capacity && capacity.burst.complete,
    });
  }
  return checks;
}

// ---- SVG ------------------------------------------------------------------------------------

const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Ratios against raw ws at the largest size, log scale, one group of bars per metric. */
function ratioChart(bench: BenchOptions, all: readonly Measurement[], info: RunInfo): string {
  const n = Math.max(...bench.sizes);
  const slowest = Math.min(...bench.rates);
  const keys = ['cpuPerDeliveryUs', 'throughput', 'rssPerConnKiB', 'setupRate', `p99@${slowest}`];
  const defs = metricDefs(bench.rates).filter((d) => keys.includes(d.key));
  const targets = bench.targets.filter((t) => t !== BASELINE && info.unavailable[t] === undefined);
  const barH = 14;
  const groupGap = 18;
  const left = 190;
  const plotW = 520;
  const top = 72;
  const groupH = targets.length * barH + groupGap;
  const height = top + defs.length * groupH + 30 + targets.length * 18;
  const width = left + plotW + 90;
  const lo = Math.log2(1 / 8);
  const hi = Math.log2(8);
  const x = (ratio: number): number => {
    const l = Math.min(hi, Math.max(lo, Math.log2(ratio)));
    return left + ((l - lo) / (hi - lo)) * plotW;
  };
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  parts.push(
    `<text x="10" y="20" font-size="15" font-weight="bold">Ratio against raw ws, ${n.toLocaleString('en-US')} subscribers (median over ${bench.rounds} round(s), log scale)</text>`,
  );
  parts.push(
    `<text x="10" y="38" fill="#555">For CPU, memory and latency lower is better; for throughput and setup higher is better.</text>`,
  );
  for (const tick of [0.125, 0.25, 0.5, 1, 2, 4, 8]) {
    const tx = x(tick);
    parts.push(
      `<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${top + defs.length * groupH - groupGap}" stroke="${tick === 1 ? '#000' : '#ddd'}"/>`,
    );
    parts.push(`<text x="${tx}" y="${top - 10}" text-anchor="middle" fill="#555">${tick}×</text>`);
  }
  defs.forEach((d, gi) => {
    const gy = top + gi * groupH;
    parts.push(
      `<text x="${left - 8}" y="${gy + (targets.length * barH) / 2 + 4}" text-anchor="end" font-weight="bold">${esc(`${d.label} (${d.better})`)}</text>`,
    );
    targets.forEach((t, ti) => {
      const r = cell(all, t, n, d, BASELINE).ratio;
      const y = gy + ti * barH;
      if (r === undefined) {
        parts.push(`<text x="${x(1) + 4}" y="${y + barH - 3}" fill="#999">n/a</text>`);
        return;
      }
      const x0 = Math.min(x(1), x(r.median));
      const w = Math.max(1, Math.abs(x(r.median) - x(1)));
      parts.push(
        `<rect x="${x0.toFixed(1)}" y="${y + 1}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${COLORS[bench.targets.indexOf(t) % COLORS.length]}"><title>${esc(`${TARGETS[t].label}: ×${r.median.toFixed(2)}`)}</title></rect>`,
      );
      parts.push(
        `<text x="${(Math.max(x(1), x(r.median)) + 4).toFixed(1)}" y="${y + barH - 3}" font-size="10" fill="#333">×${r.median.toFixed(2)}</text>`,
      );
    });
  });
  const ly = top + defs.length * groupH + 10;
  targets.forEach((t, i) => {
    const y = ly + i * 18;
    parts.push(
      `<rect x="${left}" y="${y}" width="12" height="12" fill="${COLORS[bench.targets.indexOf(t) % COLORS.length]}"/>`,
    );
    parts.push(`<text x="${left + 18}" y="${y + 10}">${esc(TARGETS[t].label)}</text>`);
  });
  parts.push(`</svg>`);
  return parts.join('\n') + '\n';
}

/**
 * The autocannon scenario: Herald and the raw ws reference side by side (median [min–max] over
 * rounds, and Herald's ratio against raw ws round by round), then one line per run.
 */
function autocannonMarkdown(bench: BenchOptions, all: readonly AutocannonResult[]): string[] {
  const first = all[0];
  if (first === undefined) return [];
  // Runs saved before the raw ws reference joined carry no target: they are Herald's.
  const of = (target: AutocannonTarget): AutocannonResult[] => all.filter((a) => (a.target ?? 'herald-ws') === target);
  const herald = of('herald-ws');
  const raw = of('ws');
  const whole = (v: number): string => Math.round(v).toLocaleString('en-US');
  const fixed = (v: number): string => v.toFixed(1);
  const show = (x: Spread | undefined, f: (v: number) => string): string =>
    x === undefined ? 'n/a' : x.rounds === 1 ? f(x.median) : `${f(x.median)} [${f(x.min)}–${f(x.max)}]`;
  const ratio = (get: (a: AutocannonResult) => number): Spread | undefined =>
    spread(
      herald.flatMap((h) => {
        const r = raw.find((x) => x.round === h.round);
        return r === undefined ? [] : [get(h) / get(r)];
      }),
    );
  const showRatio = (x: Spread | undefined): string =>
    x === undefined
      ? ''
      : x.rounds === 1
        ? ` ×${x.median.toFixed(2)}`
        : ` ×${x.median.toFixed(2)} (${x.min.toFixed(2)}–${x.max.toFixed(2)})`;
  const lines = [
    `## autocannon: ${first.connections} connections, POST publish, ${first.subscribers} WebSocket subscribers`,
    ``,
    `autocannon publishes to Herald (\`POST /api/publish\`) and to the raw ws reference server (\`POST /publish\`, one write per ` +
      `subscriber per publication) in each round. Cells: median [min–max over rounds]; Herald's ×ratio against raw ws in the same round.`,
    ``,
    `| Server | publications/s | server CPU per publication, µs | publish p99, ms |`,
    `|---|---:|---:|---:|`,
  ];
  for (const [rows, label] of [
    [herald, AUTOCANNON_LABELS['herald-ws']],
    [raw, AUTOCANNON_LABELS.ws],
  ] as const) {
    if (rows.length === 0) continue;
    const isHerald = rows === herald;
    lines.push(
      `| ${label} | ${show(spread(rows.map((a) => a.publishPerSecond)), whole)}${isHerald ? showRatio(ratio((a) => a.publishPerSecond)) : ''} ` +
        `| ${show(spread(rows.map((a) => a.cpuPerPublishUs)), fixed)}${isHerald ? showRatio(ratio((a) => a.cpuPerPublishUs)) : ''} ` +
        `| ${show(spread(rows.map((a) => a.latencyP99)), whole)} |`,
    );
  }
  lines.push(``);
  for (const a of all) {
    lines.push(
      `- ${AUTOCANNON_LABELS[a.target]}, round ${a.round}: ${whole(a.publishPerSecond)}/s over ${a.seconds.toFixed(1)} s ` +
        `(${a.ok.toLocaleString('en-US')} 2xx, ${a.non2xx} other answers, ${a.errors} errors); p50 ${a.latencyP50} ms; ` +
        `subscribers counted ${a.delivered.toLocaleString('en-US')} of ${a.expected.toLocaleString('en-US')} deliveries` +
        (a.subscribersDropped > 0
          ? `; **${a.subscribersDropped} of ${a.subscribers} subscribers were disconnected** during the run ` +
            `(${Object.entries(a.dropReasons)
              .map(([reason, n]) => `${reason}: ${n}`)
              .join(', ')}; 4004 is the hub's queue bound, a client that did not read what it was sent), ` +
            `which lightens the server's work.`
          : '; no subscriber was disconnected.'),
    );
  }
  const rate = spread(herald.map((a) => a.publishPerSecond));
  if (!bench.quick && rate !== undefined)
    lines.push(``, `Target ≥ 10,000 publications/s (Herald, median): ${autocannonVerdict(herald, rate.median)}.`);
  lines.push(``);
  return lines;
}

/** The autocannon target's verdict: the median rate, with every subscriber kept to the end in every round. */
function autocannonVerdict(rounds: readonly AutocannonResult[], median: number): string {
  if (rounds.some((a) => a.subscribersDropped > 0)) return '**not judged: subscribers were disconnected**';
  if (median >= 10_000) return 'yes';
  return `**no, by ${Math.round(10_000 - median).toLocaleString('en-US')}/s**`;
}
