/** Parent side of hub-process.ts: start a hub in a child process, ask it about memory, stop it. */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HeraldOptions } from '@herald/server';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('./hub-process.ts', import.meta.url));

export interface ChildHubConfig {
  readonly port?: number;
  readonly options?: Partial<Omit<HeraldOptions, 'logger' | 'routes' | 'broker' | 'presence'>>;
  readonly broker?: string;
  readonly drain?: { batchSize?: number; pauseMs?: number };
  readonly witnessChannels?: readonly string[];
  readonly logLevel?: string;
  /** Attach Socket.IO when the package provides attachSocketIo (see hub.socketio for whether it did). */
  readonly socketio?: boolean;
  /** Extra node flags for the child, e.g. --max-old-space-size. */
  readonly execArgv?: readonly string[];
}

export interface Drained {
  readonly drainMs: number;
  readonly witness: Record<string, number[]>;
}

export interface ChildHub {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  /** Whether Socket.IO is attached. */
  readonly socketio: boolean;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** Set once the process ended. */
  exitStatus: number | string | undefined;
  /** What the child reported after a SIGTERM drain. */
  readonly drained: Promise<Drained>;
  memory(gc?: boolean): Promise<NodeJS.MemoryUsage>;
  stats(): Promise<any>;
  /** Current and peak resident set size from /proc, in bytes (works even if the hub is busy). */
  rss(): { rss: number; peak: number };
  stderr(): string;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

export async function startChildHub(config: ChildHubConfig = {}): Promise<ChildHub> {
  const { execArgv = [], ...rest } = config;
  const child = fork(ENTRY, [], {
    cwd: ROOT,
    execArgv: ['--conditions=herald-source', '--import', 'tsx', '--expose-gc', ...execArgv],
    env: { ...process.env, NODE_OPTIONS: '', HERALD_TEST_HUB: JSON.stringify(rest) },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 1_000_000) stderr += d.toString();
  });
  let nextId = 1;
  const waiting = new Map<number, (m: any) => void>();
  let onDrained: (d: Drained) => void = () => undefined;
  const drained = new Promise<Drained>((r) => (onDrained = r));
  const ready = new Promise<{ port: number; socketio: boolean }>((resolve, reject) => {
    child.on('message', (m: any) => {
      if (m.type === 'ready') resolve(m);
      else if (m.type === 'drained') onDrained(m);
      else if (typeof m.id === 'number') {
        waiting.get(m.id)?.(m);
        waiting.delete(m.id);
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`hub exited before ready (${code ?? signal}): ${stderr}`)));
  });
  const hub: ChildHub = {
    child,
    pid: child.pid as number,
    port: 0,
    url: '',
    wsUrl: '',
    socketio: false,
    exitStatus: undefined,
    exited: new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        hub.exitStatus = code ?? signal ?? 'unknown';
        resolve(hub.exitStatus);
      }),
    ),
    drained,
    memory: (gc = false) => ask({ type: 'memory', gc }).then((m) => m.memory),
    stats: () => ask({ type: 'stats' }).then((m) => m.stats),
    rss: () => procRss(child.pid as number),
    stderr: () => stderr,
    kill: async () => {
      if (hub.exitStatus === undefined) {
        child.kill('SIGKILL');
        await hub.exited;
      }
    },
  };
  function ask(request: Record<string, unknown>): Promise<any> {
    if (hub.exitStatus !== undefined) return Promise.reject(new Error(`hub exited (${hub.exitStatus})`));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('hub did not answer over IPC')), 30_000);
      waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      child.send({ id, ...request });
    });
  }
  const { port, socketio } = await ready;
  Object.assign(hub, { port, socketio, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws` });
  return hub;
}

export function procRss(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export const MiB = 1024 * 1024;
export const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
