/**
 * From per-round measurements to figures: the median with min-max of each metric, and its ratio
 * against a reference target computed round by round (both measured minutes apart on the same
 * machine state), then summarised the same way. Ratios are what survive a noisy, shared machine.
 */
import type { Measurement } from './measure.js';
import type { TargetId } from './targets.js';

export interface MetricDef {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: 'lower' | 'higher';
  readonly digits: number;
  get(m: Measurement): number | undefined;
}

export function metricDefs(rates: readonly number[]): MetricDef[] {
  const defs: MetricDef[] = [
    { key: 'setupRate', label: 'Setup', unit: 'conn/s', better: 'higher', digits: 0, get: (m) => m.setupRate },
    {
      key: 'setupCpuPerConnUs',
      label: 'Setup CPU/conn',
      unit: 'µs',
      better: 'lower',
      digits: 0,
      get: (m) => m.setupCpuPerConnUs,
    },
    { key: 'rssPerConnKiB', label: 'RSS/conn', unit: 'KiB', better: 'lower', digits: 1, get: (m) => m.rssPerConnKiB },
    {
      key: 'heapPerConnKiB',
      label: 'Heap/conn',
      unit: 'KiB',
      better: 'lower',
      digits: 1,
      get: (m) => m.heapPerConnKiB,
    },
    {
      key: 'throughput',
      label: 'Fan-out',
      unit: 'deliv/s',
      better: 'higher',
      digits: 0,
      get: (m) => (m.burst.complete ? m.burst.throughput : undefined),
    },
    {
      key: 'cpuPerDeliveryUs',
      label: 'CPU/delivery',
      unit: 'µs',
      better: 'lower',
      digits: 2,
      get: (m) => (m.burst.delivered > 0 ? m.burst.cpuPerDeliveryUs : undefined),
    },
    {
      key: 'syscallsPerDelivery',
      label: 'Writes/delivery',
      unit: 'syscalls',
      better: 'lower',
      digits: 3,
      get: (m) => m.burst.syscallsPerDelivery,
    },
  ];
  for (const rate of rates) {
    defs.push({
      key: `cpu@${rate}`,
      label: `CPU/delivery @${rate}/s`,
      unit: 'µs',
      better: 'lower',
      digits: 2,
      get: (m) => {
        const l = m.latency.find((x) => x.rate === rate);
        return l !== undefined && l.samples > 0 ? l.cpuPerDeliveryUs : undefined;
      },
    });
    for (const q of ['p50', 'p95', 'p99', 'max'] as const) {
      defs.push({
        key: `${q}@${rate}`,
        label: `${q} @${rate}/s`,
        unit: 'ms',
        better: 'lower',
        digits: 2,
        get: (m) => {
          const l = m.latency.find((x) => x.rate === rate);
          return l !== undefined && l.samples > 0 ? l[q] : undefined;
        },
      });
    }
  }
  return defs;
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly rounds: number;
}

export function spread(values: readonly number[]): Spread | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  return { median, min: v[0] as number, max: v[v.length - 1] as number, rounds: v.length };
}

export interface Cell {
  readonly value: Spread | undefined;
  /** Against the reference target, round by round. */
  readonly ratio: Spread | undefined;
}

/** The cell of `target` at size `n` for `metric`, with ratios against `reference`. */
export function cell(
  all: readonly Measurement[],
  target: TargetId,
  n: number,
  metric: MetricDef,
  reference: TargetId,
): Cell {
  const mine = all.filter((m) => m.target === target && m.n === n);
  const values = mine.map((m) => metric.get(m)).filter((v): v is number => v !== undefined);
  const ratios: number[] = [];
  for (const m of mine) {
    const ref = all.find((r) => r.target === reference && r.n === n && r.round === m.round);
    const a = metric.get(m);
    const b = ref === undefined ? undefined : metric.get(ref);
    if (a !== undefined && b !== undefined && b !== 0) ratios.push(a / b);
  }
  return { value: spread(values), ratio: spread(ratios) };
}
