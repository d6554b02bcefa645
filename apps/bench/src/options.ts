/** `herald bench` options: one typed object, defaults documented in HELP, checked before anything starts. */
import { parseArgs } from 'node:util';
import { TARGET_IDS, type TargetId } from './targets.js';

export interface BenchOptions {
  /** Subscriber counts, each measured for every target. */
  readonly sizes: readonly number[];
  readonly rounds: number;
  /** Publications in the fan-out burst. */
  readonly burst: number;
  /** Size of each publication's data, as JSON text. */
  readonly payloadBytes: number;
  /** Broadcast rates (per second) for the latency phases. */
  readonly rates: readonly number[];
  /** Length of each latency phase. */
  readonly latencySeconds: number;
  readonly targets: readonly TargetId[];
  readonly outDir: string;
  /** Most clients one load-generator process opens (the per-process fd limit is the bound). */
  readonly clientsPerProcess: number;
  /** Connection attempts in flight per load-generator process. */
  readonly concurrency: number;
  /** Connections held on one Herald WebSocket process in the capacity check; 0 skips it. */
  readonly capacity: number;
  /** Writes a `--cpu-prof` profile of every server process into the output directory. */
  readonly profile: boolean;
  readonly quick: boolean;
  /** Re-renders report.md and ratios.svg from this results.json instead of measuring. */
  readonly from: string | undefined;
}

export const HELP = `herald bench: Herald's transports against raw ws, Socket.IO and plain SSE, on this machine

Usage: herald bench [options]
  --quick                   about a minute: 200 subscribers, 1 round, short phases (CI smoke test)
  --sizes 1000,5000,10000   subscriber counts
  --rounds 3                rounds; figures are the median with min-max, ratios are per round
  --burst 200               publications in the fan-out burst
  --payload 100             bytes of each publication's data (JSON text)
  --rates 2,20              broadcasts per second for the latency phases
  --latency-seconds 5       length of each latency phase
  --targets a,b,...         subset of: ${TARGET_IDS.join(', ')}
  --out bench-results       output directory (report.md, results.json, ratios.svg)
  --clients-per-process 5000  clients per load-generator process
  --concurrency 64          connection attempts in flight per load generator
  --capacity 19000          connections held on one Herald WebSocket process (0 = skip)
  --profile                 write a --cpu-prof profile of each server process to the output directory
  --from FILE               re-render report.md and ratios.svg from a results.json (no measuring)
`;

export class UsageError extends Error {}

function list(value: string | undefined, name: string, fallback: readonly number[]): number[] {
  if (value === undefined) return [...fallback];
  const items = value.split(',').map((v) => Number(v.trim()));
  if (items.length === 0 || items.some((n) => !Number.isFinite(n) || n <= 0)) {
    throw new UsageError(`--${name} must be a comma-separated list of positive numbers`);
  }
  return items;
}

function int(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

export function parseBenchArgs(args: readonly string[]): BenchOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        quick: { type: 'boolean' },
        sizes: { type: 'string' },
        rounds: { type: 'string' },
        burst: { type: 'string' },
        payload: { type: 'string' },
        rates: { type: 'string' },
        'latency-seconds': { type: 'string' },
        targets: { type: 'string' },
        out: { type: 'string' },
        'clients-per-process': { type: 'string' },
        concurrency: { type: 'string' },
        capacity: { type: 'string' },
        profile: { type: 'boolean' },
        from: { type: 'string' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) return 'help';
  const quick = values.quick === true;
  const targets = (values.targets?.split(',').map((t) => t.trim()) ?? [...TARGET_IDS]) as TargetId[];
  for (const t of targets) {
    if (!TARGET_IDS.includes(t)) throw new UsageError(`unknown target "${t}" (known: ${TARGET_IDS.join(', ')})`);
  }
  if (!targets.includes('ws')) targets.unshift('ws');
  const sizes = list(values.sizes, 'sizes', quick ? [200] : [1000, 5000, 10_000]).map(Math.round);
  return {
    sizes,
    rounds: int(values.rounds, 'rounds', quick ? 1 : 3, 1, 50),
    burst: int(values.burst, 'burst', quick ? 50 : 200, 1, 100_000),
    payloadBytes: int(values.payload, 'payload', 100, 40, 60_000),
    rates: list(values.rates, 'rates', [2, 20]),
    latencySeconds: Number(values['latency-seconds'] ?? (quick ? 2 : 5)),
    targets,
    outDir: values.out ?? 'bench-results',
    clientsPerProcess: int(values['clients-per-process'], 'clients-per-process', 5000, 1, 19_000),
    concurrency: int(values.concurrency, 'concurrency', 64, 1, 10_000),
    capacity: int(values.capacity, 'capacity', quick ? 400 : 19_000, 0, 1_000_000),
    profile: values.profile === true,
    quick,
    from: values.from,
  };
}
