/**
 * `herald bench`: Herald's transports against raw `ws`, Socket.IO and plain SSE on this machine.
 * Servers and load generators run as separate processes on 127.0.0.1; see docs/benchmarks.md for
 * what is measured and how to read it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { AUTOCANNON_LABELS, measureAutocannon, type AutocannonResult } from './autocannon-load.js';
import { DROP_TARGETS, dropSizes, measureDrop, type DropMeasurement } from './drop.js';
import { measure, type Measurement } from './measure.js';
import { HELP, parseBenchArgs, UsageError, type BenchOptions } from './options.js';
import { Children } from './procs.js';
import { buildReport, type RunInfo } from './report.js';
import { socketIoPluginAvailable } from './socketio-plugin.js';
import { TARGETS, type TargetId } from './targets.js';
import { measureUserPath, USER_TARGETS, type UserPathMeasurement } from './user-path.js';

export type { BenchOptions } from './options.js';
export type { Measurement } from './measure.js';
export type { UserPathMeasurement } from './user-path.js';
export type { DropMeasurement } from './drop.js';

export interface BenchResult {
  readonly options: BenchOptions;
  readonly measurements: readonly Measurement[];
  /** The user-path scenarios: a separate publisher over HTTP. */
  readonly userPath: readonly UserPathMeasurement[];
  /** The autocannon scenario: Herald and the raw ws reference, one result each per round. */
  readonly autocannon: readonly AutocannonResult[];
  /** The drop-and-resume scenario: connections cut while publishing. */
  readonly drop: readonly DropMeasurement[];
  readonly capacity: Measurement | undefined;
  readonly markdown: string;
  readonly outDir: string;
  readonly failures: readonly string[];
  /** Targets not measured, and why (the Socket.IO plugin missing from the build). */
  readonly unavailable: Partial<Record<TargetId, string>>;
  /** Bench processes still running when the run returned: 0 unless something could not be killed. */
  readonly leftRunning: number;
}

export async function runBenchCli(args: readonly string[]): Promise<number> {
  let options;
  try {
    options = parseBenchArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`herald bench: ${error.message}\n${HELP}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (options.from !== undefined) return rerender(options.from);
  const result = await runBench(options, `herald bench ${args.join(' ')}`.trim());
  process.stdout.write(`${result.markdown}\n`);
  process.stdout.write(`\nwritten to ${result.outDir}/ (report.md, results.json, ratios.svg)\n`);
  return result.failures.length === 0 ? 0 : 1;
}

/** Runs the whole comparison; every process it starts is stopped before it returns or throws. */
export async function runBench(
  options: BenchOptions,
  command: string,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<BenchResult> {
  const started = Date.now();
  const children = new Children();
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`herald bench: ${signal}, stopping every bench process`);
    void children.stopAll().finally(() => process.exit(130));
  };
  const onExit = (): void => children.killAllNow();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);

  const unavailable: Partial<Record<TargetId, string>> = {};
  if (options.targets.includes('herald-socketio') && !(await socketIoPluginAvailable())) {
    unavailable['herald-socketio'] = 'the @herald/transport-socketio plugin is not available in this build';
  }
  const measurements: Measurement[] = [];
  const failures: string[] = [];
  let capacity: Measurement | undefined;
  const userPath: UserPathMeasurement[] = [];
  const autocannon: AutocannonResult[] = [];
  const drop: DropMeasurement[] = [];
  let leftRunning = 0;
  try {
    if (options.scenarios.includes('user')) {
      for (const n of options.sizes) {
        for (let round = 1; round <= options.rounds; round++) {
          for (const id of options.userTargets) {
            const target = USER_TARGETS[id];
            log(`[${elapsed(started)}] user path, N=${n} round ${round}/${options.rounds}: ${target.label}`);
            try {
              const m = await measureUserPath({ target, n, round, bench: options, children, log });
              userPath.push(m);
              log(`    ${userLine(m)}`);
            } catch (error) {
              const message = `user path ${target.label} at N=${n}, round ${round}: ${error instanceof Error ? error.message : String(error)}`;
              failures.push(message);
              log(`    FAILED ${message}`);
            }
          }
        }
      }
    }
    for (let round = 1; options.scenarios.includes('autocannon') && round <= options.rounds; round++) {
      for (const target of ['herald-ws', 'ws'] as const) {
        log(
          `[${elapsed(started)}] autocannon, round ${round}/${options.rounds}: ${AUTOCANNON_LABELS[target]}, 50 connections, ${options.autocannonSubscribers} WebSocket subscribers`,
        );
        try {
          const a = await measureAutocannon({ target, round, bench: options, children, log });
          autocannon.push(a);
          log(`    ${Math.round(a.publishPerSecond)} publications/s, p99 ${a.latencyP99} ms`);
        } catch (error) {
          failures.push(
            `autocannon ${AUTOCANNON_LABELS[target]}, round ${round}: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
    }
    for (const n of options.scenarios.includes('drop') ? dropSizes(options) : []) {
      for (let round = 1; round <= options.rounds; round++) {
        for (const id of options.dropTargets) {
          const target = DROP_TARGETS[id];
          log(`[${elapsed(started)}] drop and resume, ${n} clients, round ${round}/${options.rounds}: ${target.label}`);
          try {
            const m = await measureDrop({ target, n, round, bench: options, children, log });
            drop.push(m);
            log(`    ${dropLine(m)}`);
          } catch (error) {
            const message = `drop ${target.label} at N=${n}, round ${round}: ${error instanceof Error ? error.message : String(error)}`;
            failures.push(message);
            log(`    FAILED ${message}`);
          }
        }
      }
    }
    for (const n of options.scenarios.includes('inprocess') ? options.sizes : []) {
      for (let round = 1; round <= options.rounds; round++) {
        for (const id of options.targets) {
          if (unavailable[id] !== undefined) continue;
          log(`[${elapsed(started)}] N=${n} round ${round}/${options.rounds}: ${TARGETS[id].label}`);
          try {
            const m = await measure({ target: TARGETS[id], n, round, bench: options, children, log });
            measurements.push(m);
            log(`    ${oneLine(m)}`);
          } catch (error) {
            const message = `${TARGETS[id].label} at N=${n}, round ${round}: ${error instanceof Error ? error.message : String(error)}`;
            failures.push(message);
            log(`    FAILED ${message}`);
          }
        }
      }
    }
    if (options.capacity > 0 && options.scenarios.includes('inprocess')) {
      log(`[${elapsed(started)}] capacity: ${options.capacity} connections on one Herald WebSocket process`);
      try {
        capacity = await measure({
          target: TARGETS['herald-ws'],
          n: options.capacity,
          round: 1,
          bench: options,
          children,
          burstOnly: { publications: 20 },
          log,
        });
        log(`    ${oneLine(capacity)}`);
      } catch (error) {
        failures.push(`capacity: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    await children.stopAll();
    leftRunning = children.size;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }

  const all = capacity === undefined ? measurements : [...measurements, capacity];
  const info: RunInfo = {
    command,
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
    loadAverage: loadavg(),
    serverFdLimit: all.length === 0 ? Number.NaN : Math.min(...all.map((m) => m.serverFdLimit)),
    clientFdLimit: all.length === 0 ? Number.NaN : Math.min(...all.flatMap((m) => m.clientFdLimits)),
    unavailable,
    failures,
  };
  const report = buildReport(options, measurements, capacity, info, userPath, autocannon, drop);
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'report.md'), `${report.markdown}\n`);
  await writeFile(join(outDir, 'results.json'), `${report.json}\n`);
  await writeFile(join(outDir, 'ratios.svg'), report.svg);
  return {
    options,
    measurements,
    userPath,
    autocannon,
    drop,
    capacity,
    markdown: report.markdown,
    outDir,
    failures,
    unavailable,
    leftRunning,
  };
}

/** Rebuilds the Markdown and the chart of a finished run from its results.json. */
async function rerender(file: string): Promise<number> {
  const saved = JSON.parse(await readFile(file, 'utf8')) as {
    info: RunInfo;
    options: BenchOptions;
    measurements: Measurement[];
    capacity: Measurement | null;
    userPath?: UserPathMeasurement[];
    /** One result per round; a single object (or null) in runs saved before rounds applied to it. */
    autocannon?: AutocannonResult[] | AutocannonResult | null;
    drop?: DropMeasurement[];
  };
  const report = buildReport(
    saved.options,
    saved.measurements,
    saved.capacity ?? undefined,
    saved.info,
    saved.userPath ?? [],
    savedAutocannon(saved.autocannon),
    saved.drop ?? [],
  );
  const dir = dirname(resolve(file));
  await writeFile(join(dir, 'report.md'), `${report.markdown}\n`);
  await writeFile(join(dir, 'ratios.svg'), report.svg);
  process.stdout.write(`${report.markdown}\n\nwritten to ${dir}/ (report.md, ratios.svg)\n`);
  return 0;
}

function elapsed(since: number): string {
  const s = Math.round((Date.now() - since) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function userLine(m: UserPathMeasurement): string {
  const paced = m.paced.map(
    (p) => `p99@${p.rate}/s ${p.p99.toFixed(1)} ms (schedule ${p.p99FromSchedule.toFixed(1)} ms)`,
  );
  return (
    `${m.connected}/${m.n} connected on ${m.nodes} node(s), burst ${m.burst.cpuPerDeliveryUs.toFixed(2)} us CPU/deliv, ` +
    `${Math.round(m.burst.throughput)} deliv/s${m.burst.complete ? '' : ' (INCOMPLETE)'}, ${paced.join(', ')}`
  );
}

function dropLine(m: DropMeasurement): string {
  const pairs = m.clients * m.perClient;
  return (
    `${m.clients} clients × ${m.perClient} publications: ${m.exactlyOnce}/${pairs} exactly once, ${m.lost} lost, ` +
    `${m.duplicated} duplicated, ${m.outOfOrder} out of order; ${m.cuts} cuts, ${m.reconnects} reconnects, ` +
    `${m.notRecovered} not recovered`
  );
}

function oneLine(m: Measurement): string {
  const lat = m.latency.map((l) => `p99@${l.rate}/s ${l.p99.toFixed(2)} ms`).join(', ');
  return (
    `${m.connected}/${m.n} connected, ${Math.round(m.setupRate)} conn/s (${Math.round(m.setupCpuPerConnUs)} us CPU each), ${m.rssPerConnKiB.toFixed(1)} KiB RSS/conn, ` +
    `${m.heapPerConnKiB.toFixed(1)} KiB heap/conn, ${Math.round(m.burst.throughput)} deliv/s, ` +
    `${m.burst.cpuPerDeliveryUs.toFixed(2)} us CPU/deliv, ${m.burst.syscallsPerDelivery?.toFixed(3) ?? '?'} writes/deliv${m.burst.complete ? '' : ' (INCOMPLETE)'}${lat === '' ? '' : `, ${lat}`}`
  );
}

/** Runs saved before autocannon had rounds and a raw ws reference hold one Herald result. */
function savedAutocannon(saved: AutocannonResult[] | AutocannonResult | null | undefined): AutocannonResult[] {
  if (Array.isArray(saved)) return saved;
  if (saved === null || saved === undefined) return [];
  return [{ ...saved, target: 'herald-ws', round: 1 }];
}
