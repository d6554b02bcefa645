/** `herald bench` options: one typed object, defaults documented in HELP, checked before anything starts. */
import { parseArgs } from 'node:util';
import { CUT_MAX_MS, CUT_MIN_MS, DROP_DEFAULT_CLIENTS, DROP_TARGET_IDS, type DropTargetId } from './drop.js';
import { TARGET_IDS, type TargetId } from './targets.js';
import { DEFAULT_USER_TARGET_IDS, USER_TARGET_IDS, type UserTargetId } from './user-path.js';

export const SCENARIOS = ['user', 'autocannon', 'drop', 'inprocess'] as const;
export type Scenario = (typeof SCENARIOS)[number];

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
  /**
   * The fewest publications a latency phase sends, whatever its length: at 2/s, 5 s are ten
   * publications, and the p99 of ten is one publication's tail (`pacedPublications`).
   */
  readonly minPublications: number;
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
  /**
   * Which scenario sets run: `user` (a separate publisher over HTTP), `autocannon`, `drop`
   * (connections cut while publishing), `inprocess` (the best case).
   */
  readonly scenarios: readonly Scenario[];
  /** Targets of the user-path scenarios. */
  readonly userTargets: readonly UserTargetId[];
  /** Publish requests in flight during a user-path burst. */
  readonly inFlight: number;
  /** The autocannon scenario: its length and the WebSocket subscribers meanwhile. */
  readonly autocannonSeconds: number;
  readonly autocannonSubscribers: number;
  /** The drop scenario: publications per second, for how long, and the most clients per target. */
  readonly dropRate: number;
  readonly dropSeconds: number;
  readonly dropClients: number;
  /** The drop scenario's targets. */
  readonly dropTargets: readonly DropTargetId[];
  /** Re-renders report.md and ratios.svg from this results.json instead of measuring. */
  readonly from: string | undefined;
}

export const HELP = `herald bench: Herald's transports against raw ws, Socket.IO and plain SSE, on this machine

Usage: herald bench [options]
  --quick                   a smoke test: 200 subscribers, 1 round, short phases; no target verdicts
  --scenarios user,inprocess  user: a separate publisher over HTTP (burst and paced; Redis 2 nodes);
                            autocannon: a third-party load tool on POST /api/publish;
                            drop: connections cut while publishing, delivery counted (resume);
                            inprocess: the best case, publications in one loop inside the server
  --user-targets a,b,...    subset of: ${USER_TARGET_IDS.join(', ')}
                            (default: all but herald-ws-serve and herald-ws-workers, which run
                            the built herald command: one process, and --workers 2)
  --in-flight 16            publish requests in flight during a user-path burst
  --autocannon-seconds 10   autocannon: 50 connections POST /api/publish to Herald for this long
  --autocannon-subscribers 100  WebSocket subscribers meanwhile
  --drop-rate 20            drop: publications per second, each numbered, from a separate publisher
  --drop-seconds 10         drop: how long it publishes (--quick: 3) while every client's connection
                            is cut from the client side, first within ${CUT_MIN_MS / 1000} s, then every ${CUT_MIN_MS / 1000}-${CUT_MAX_MS / 1000} s
  --drop-clients ${DROP_DEFAULT_CLIENTS}        drop: most clients per target (--sizes above it are capped)
  --drop-targets a,b,...    drop: subset of: ${DROP_TARGET_IDS.join(', ')}
  --sizes 1000,5000,10000   subscriber counts
  --rounds 3                rounds; figures are the median with min-max, ratios are per round
  --burst 200               publications in the fan-out burst
  --payload 100             bytes of each publication's data (JSON text)
  --rates 2,20              broadcasts per second for the latency phases
  --latency-seconds 5       length of each latency phase
  --min-publications 30     fewest publications per latency phase (--quick: 3): at 2/s the phase
                            lasts 15 s, so its p99 is not one publication's tail
  --targets a,b,...         subset of: ${TARGET_IDS.join(', ')}
  --out bench-results       output directory (report.md, results.json, ratios.svg)
  --clients-per-process 5000  clients per load-generator process
  --concurrency 64          connection attempts in flight per load generator
  --capacity 19000          connections held on one Herald WebSocket process (0 = skip)
  --profile                 write a --cpu-prof profile of each server process to the output directory
  --from FILE               re-render report.md and ratios.svg from a results.json (no measuring)
`;

export class UsageError extends Error {}

/**
 * How many publications a latency phase at `rate` per second sends: `--latency-seconds` of them,
 * and at least `--min-publications`. Why a floor: a round's p99 is its 1 % slowest deliveries,
 * and a publication to N subscribers gives N of them at once, its last-written subscribers the
 * slowest; of ten publications, one that meets a pause of the machine carries a tenth of the
 * samples and decides the p99 alone. Results written before the option existed read as 3.
 */
export function pacedPublications(bench: { latencySeconds: number; minPublications?: number }, rate: number): number {
  return Math.max(bench.minPublications ?? 3, Math.round(rate * bench.latencySeconds));
}

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
        'min-publications': { type: 'string' },
        targets: { type: 'string' },
        out: { type: 'string' },
        'clients-per-process': { type: 'string' },
        concurrency: { type: 'string' },
        capacity: { type: 'string' },
        profile: { type: 'boolean' },
        from: { type: 'string' },
        scenarios: { type: 'string' },
        'user-targets': { type: 'string' },
        'in-flight': { type: 'string' },
        'autocannon-seconds': { type: 'string' },
        'autocannon-subscribers': { type: 'string' },
        'drop-rate': { type: 'string' },
        'drop-seconds': { type: 'string' },
        'drop-clients': { type: 'string' },
        'drop-targets': { type: 'string' },
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
  const scenarios = (values.scenarios?.split(',').map((t) => t.trim()) ?? [...SCENARIOS]) as Scenario[];
  for (const s of scenarios) {
    if (!SCENARIOS.includes(s)) throw new UsageError(`unknown scenario "${s}" (known: ${SCENARIOS.join(', ')})`);
  }
  const userTargets = (values['user-targets']?.split(',').map((t) => t.trim()) ?? [
    ...DEFAULT_USER_TARGET_IDS,
  ]) as UserTargetId[];
  for (const t of userTargets) {
    if (!USER_TARGET_IDS.includes(t))
      throw new UsageError(`unknown user target "${t}" (known: ${USER_TARGET_IDS.join(', ')})`);
  }
  // Ratios need the references in the same round.
  for (const ref of ['sse', 'ws'] as const) if (!userTargets.includes(ref)) userTargets.unshift(ref);
  const dropTargets = (values['drop-targets']?.split(',').map((t) => t.trim()) ?? [
    ...DROP_TARGET_IDS,
  ]) as DropTargetId[];
  for (const t of dropTargets) {
    if (!DROP_TARGET_IDS.includes(t))
      throw new UsageError(`unknown drop target "${t}" (known: ${DROP_TARGET_IDS.join(', ')})`);
  }
  const sizes = list(values.sizes, 'sizes', quick ? [200] : [1000, 5000, 10_000]).map(Math.round);
  return {
    sizes,
    rounds: int(values.rounds, 'rounds', quick ? 1 : 3, 1, 50),
    burst: int(values.burst, 'burst', quick ? 50 : 200, 1, 100_000),
    payloadBytes: int(values.payload, 'payload', 100, 40, 60_000),
    rates: list(values.rates, 'rates', [2, 20]),
    latencySeconds: Number(values['latency-seconds'] ?? (quick ? 2 : 5)),
    minPublications: int(values['min-publications'], 'min-publications', quick ? 3 : 30, 1, 100_000),
    targets,
    outDir: values.out ?? 'bench-results',
    clientsPerProcess: int(values['clients-per-process'], 'clients-per-process', 5000, 1, 19_000),
    concurrency: int(values.concurrency, 'concurrency', 64, 1, 10_000),
    capacity: int(values.capacity, 'capacity', quick ? 400 : 19_000, 0, 1_000_000),
    profile: values.profile === true,
    quick,
    from: values.from,
    scenarios,
    userTargets,
    inFlight: int(values['in-flight'], 'in-flight', 16, 1, 1024),
    autocannonSeconds: int(values['autocannon-seconds'], 'autocannon-seconds', quick ? 2 : 10, 1, 600),
    autocannonSubscribers: int(values['autocannon-subscribers'], 'autocannon-subscribers', 100, 1, 19_000),
    dropRate: int(values['drop-rate'], 'drop-rate', 20, 1, 1_000),
    dropSeconds: int(values['drop-seconds'], 'drop-seconds', quick ? 3 : 10, 1, 300),
    dropClients: int(values['drop-clients'], 'drop-clients', DROP_DEFAULT_CLIENTS, 1, 5_000),
    dropTargets,
  };
}
