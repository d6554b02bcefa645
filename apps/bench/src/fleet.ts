/**
 * One scenario's processes: the server process(es) of a target and the load generators whose
 * clients connect to them, spread evenly (with two nodes, half the clients on each). Measures the
 * setup on the way; `stop` ends every process it started.
 */
import { join } from 'node:path';
import { nowUs } from './clock.js';
import type { BenchOptions } from './options.js';
import type { Answer, Child, Children } from './procs.js';
import type { ClientKind, ServerKind } from './targets.js';

export const SERVER_SCRIPTS: Readonly<Record<ServerKind, string>> = {
  ws: 'server-ws',
  sse: 'server-sse',
  socketio: 'server-socketio',
  herald: 'server-herald',
  'herald-cli': 'server-herald-cli',
};

export interface FleetSpec {
  readonly name: string;
  readonly server: ServerKind;
  /** One entry per server process (node); each is that process's arguments. */
  readonly nodes: readonly (readonly string[])[];
  readonly client: ClientKind;
  readonly n: number;
  readonly round: number;
  readonly bench: BenchOptions;
  readonly children: Children;
  readonly log: (line: string) => void;
}

export interface Fleet {
  readonly servers: readonly Child[];
  readonly hellos: readonly Answer[];
  readonly loadGens: readonly Child[];
  readonly clientHellos: readonly Answer[];
  readonly connected: number;
  readonly connectErrors: Record<string, number>;
  readonly setupSeconds: number;
  /** Server CPU time (every node) over the setup. */
  readonly setupCpuUs: number;
  readonly memoryBefore: readonly Answer[];
  /** CPU time of every server process, summed, µs. */
  cpu(): Promise<number>;
  stop(): Promise<void>;
}

export async function startFleet(spec: FleetSpec): Promise<Fleet> {
  const { bench, children, n } = spec;
  const servers = spec.nodes.map((args, i) => {
    const nodeArgs = ['--expose-gc'];
    if (bench.profile) {
      // One directory per server; node names each thread's profile itself (a tsx loader thread has its own).
      const dir = join(
        bench.outDir,
        'profiles',
        `${spec.name}-${n}-r${spec.round}${spec.nodes.length > 1 ? `-${i}` : ''}`,
      );
      nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
    }
    return children.spawn(
      `${spec.name} server${spec.nodes.length > 1 ? ` ${i + 1}` : ''}`,
      SERVER_SCRIPTS[spec.server],
      {
        nodeArgs,
        args: args,
      },
    );
  });
  const loadGens: Child[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(loadGens.map((lg) => lg.stop(2_000)));
    await Promise.all(servers.map((s) => s.stop(5_000)));
  };
  try {
    const hellos = await Promise.all(servers.map((s) => s.request('hello', {}, 30_000)));
    const memoryBefore = await Promise.all(servers.map((s) => s.request('mem')));
    const processes = Math.max(servers.length, Math.ceil(n / bench.clientsPerProcess));
    for (let i = 0; i < processes; i++) loadGens.push(children.spawn(`${spec.name} load ${i + 1}`, 'loadgen'));
    const clientHellos = await Promise.all(loadGens.map((lg) => lg.request('hello', {}, 30_000)));
    const shares = loadGens.map((_, i) => Math.floor(n / processes) + (i < n % processes ? 1 : 0));
    const cpu = async (): Promise<number> =>
      (await Promise.all(servers.map((s) => s.request('cpu')))).reduce((sum, a) => sum + (a.cpuUs as number), 0);

    const setupCpu = await cpu();
    const setupStart = nowUs();
    const connects = await Promise.all(
      loadGens.map((lg, i) =>
        lg.request(
          'connect',
          {
            kind: spec.client,
            port: hellos[i % hellos.length]?.port as number,
            count: shares[i],
            concurrency: bench.concurrency,
          },
          60_000 + n * 10,
        ),
      ),
    );
    const setupSeconds = (nowUs() - setupStart) / 1e6;
    const setupCpuUs = (await cpu()) - setupCpu;
    const connected = connects.reduce((sum, c) => sum + (c.connected as number), 0);
    const connectErrors: Record<string, number> = {};
    for (const c of connects) {
      for (const [reason, count] of Object.entries(c.errors as Record<string, number>)) {
        connectErrors[reason] = (connectErrors[reason] ?? 0) + count;
      }
    }
    if (connected < n)
      spec.log(`  ${spec.name}: ${n - connected} of ${n} clients failed: ${JSON.stringify(connectErrors)}`);
    if (connected === 0) throw new Error(`${spec.name}: no client could connect`);
    return {
      servers,
      hellos,
      loadGens,
      clientHellos,
      connected,
      connectErrors,
      setupSeconds,
      setupCpuUs,
      memoryBefore,
      cpu,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
