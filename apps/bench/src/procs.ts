/**
 * Bench child processes: spawned through `sh -c 'ulimit -n ...; exec node ...'` so each gets as
 * many file descriptors as the system allows, driven by request/answer messages over IPC, and
 * all killed at the end of the run, on errors and on SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The bench runs from dist/*.js, or from src/*.ts under tsx (tests); children run the same way. */
const SELF = import.meta.url;
const FROM_SOURCE = SELF.endsWith('.ts');
const WANTED_FDS = 65_536;

export interface Answer {
  readonly ok: boolean;
  readonly error?: string;
  readonly [key: string]: unknown;
}

export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  #exitCode: number | null | undefined;

  constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.proc = proc;
    proc.on('message', (message: Answer & { id?: number }) => {
      const waiter = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (waiter === undefined) return;
      this.#pending.delete(message.id as number);
      if (message.ok) waiter.resolve(message);
      else waiter.reject(new Error(`${this.name}: ${message.error ?? 'failed'}`));
    });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal === null ? null : -1);
        const error = new Error(`${this.name} exited (${signal ?? `code ${String(code)}`})`);
        for (const waiter of this.#pending.values()) waiter.reject(error);
        this.#pending.clear();
        resolve(code);
      });
    });
    // A spawn failure surfaces as 'error' (and maybe no 'exit'); the request then fails by timeout.
    proc.on('error', () => undefined);
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** Sends a command and waits for its answer, at most `timeoutMs`. */
  request<T extends Answer = Answer>(cmd: string, params: object = {}, timeoutMs = 30_000): Promise<T> {
    if (!this.running || !this.proc.connected) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, cmd, ...params });
    });
  }

  /** Asks the child to exit (so `--cpu-prof` can write its profile), then kills what is left. */
  async stop(graceMs = 3_000): Promise<void> {
    if (!this.running) return;
    if (this.proc.connected) this.proc.send({ id: 0, cmd: 'exit' });
    if (await Promise.race([this.exited.then(() => true), delay(graceMs).then(() => false)])) return;
    this.proc.kill('SIGTERM');
    if (await Promise.race([this.exited.then(() => true), delay(1_000).then(() => false)])) return;
    this.proc.kill('SIGKILL');
    await Promise.race([this.exited, delay(1_000)]);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export interface SpawnOptions {
  readonly nodeArgs?: readonly string[];
  readonly args?: readonly string[];
  /** Child's stderr goes to ours when true (default), so its crashes are visible. */
  readonly stderr?: boolean;
}

/** Every process the bench started; `killAll` is idempotent and safe to call from signal handlers. */
export class Children {
  readonly #all = new Set<Child>();

  spawn(name: string, script: string, options: SpawnOptions = {}): Child {
    const path = fileURLToPath(new URL(`./${script}.${FROM_SOURCE ? 'ts' : 'js'}`, SELF));
    const loader = FROM_SOURCE ? ['--conditions=herald-source', '--import', import.meta.resolve('tsx')] : [];
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
    delete env.NODE_TEST_CONTEXT;
    // Raise the soft limit as far as allowed; the child reports what it got.
    const shell = `ulimit -n ${WANTED_FDS} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"`;
    const proc = spawn(
      'sh',
      ['-c', shell, 'sh', process.execPath, ...loader, ...(options.nodeArgs ?? []), path, ...(options.args ?? [])],
      { stdio: ['ignore', 'ignore', options.stderr === false ? 'ignore' : 'inherit', 'ipc'], env },
    );
    const child = new Child(name, proc);
    this.#all.add(child);
    void child.exited.then(() => this.#all.delete(child));
    return child;
  }

  get size(): number {
    return this.#all.size;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#all].map((c) => c.stop(1_000)));
  }

  /** Synchronous last resort (process 'exit' handlers cannot wait). */
  killAllNow(): void {
    for (const child of this.#all) if (child.running) child.proc.kill('SIGKILL');
  }
}
