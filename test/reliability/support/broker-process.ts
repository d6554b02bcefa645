/**
 * Broker faults on our own instances: a redis-server or nats-server on a spare port that a test
 * may kill, restart, freeze (SIGSTOP) and thaw (SIGCONT), and a TCP proxy between hub and broker
 * whose link a test may cut and keep down. Never the shared servers on 6379 / 4222.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { portOpen } from '../../support/services.ts';

export type BrokerKind = 'redis' | 'nats';

/**
 * What a restarted redis-server still has. `none`: nothing (`--save "" --appendonly no`).
 * `aof`: everything it acknowledged (`--appendonly yes --appendfsync always`: every write is
 * fsynced before its reply). `snapshot`: what the last `snapshot()` (SAVE) wrote, nothing after.
 * NATS always runs with its JetStream file store.
 */
export type Persistence = 'none' | 'aof' | 'snapshot';

const REDIS_PERSISTENCE: Record<Persistence, readonly string[]> = {
  none: ['--save', '', '--appendonly', 'no'],
  aof: ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
  snapshot: ['--save', '', '--appendonly', 'no'],
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export class BrokerProcess {
  readonly kind: BrokerKind;
  readonly port: number;
  readonly persistence: Persistence;
  readonly #extraArgs: readonly string[];
  /** The server's own data directory (JetStream store, AOF files, dump.rdb). */
  readonly #dir: string;
  #child: ChildProcess | undefined;
  output = '';

  private constructor(
    kind: BrokerKind,
    port: number,
    persistence: Persistence,
    dir: string,
    extraArgs: readonly string[],
  ) {
    this.kind = kind;
    this.port = port;
    this.persistence = persistence;
    this.#dir = dir;
    this.#extraArgs = extraArgs;
  }

  /**
   * `persistence` is Redis's; NATS always keeps its JetStream file store across a restart.
   * `extraArgs` go to the server's command line after ours.
   */
  static async start(
    kind: BrokerKind,
    persistence: Persistence = 'none',
    extraArgs: readonly string[] = [],
  ): Promise<BrokerProcess> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), `herald-rel-${kind}-`));
    const broker = new BrokerProcess(kind, port, persistence, dir, extraArgs);
    await broker.restart();
    return broker;
  }

  get url(): string {
    return `${this.kind}://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async restart(): Promise<void> {
    const [command, args] =
      this.kind === 'redis'
        ? [
            '/usr/bin/redis-server',
            [
              '--port',
              String(this.port),
              '--bind',
              '127.0.0.1',
              '--dir',
              this.#dir,
              ...REDIS_PERSISTENCE[this.persistence],
              ...this.#extraArgs,
            ],
          ]
        : [
            '/usr/sbin/nats-server',
            ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.#dir, ...this.#extraArgs],
          ];
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-4000)));
    child.stderr?.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-4000)));
    this.#child = child;
    const deadline = Date.now() + 15_000;
    while (!(await portOpen(this.port, '127.0.0.1', 200))) {
      if (Date.now() > deadline || !this.running) throw new Error(`${command} did not start: ${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Redis: writes a snapshot (SAVE) that the next start loads; what is written after it is lost by a crash. */
  async snapshot(): Promise<void> {
    if (this.kind !== 'redis') throw new Error('only redis-server takes snapshots');
    const { stdout } = await promisify(execFile)('/usr/bin/redis-cli', ['-p', String(this.port), 'SAVE']);
    if (stdout.trim() !== 'OK') throw new Error(`SAVE answered ${stdout}`);
  }

  /** SIGKILL: a crash. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: the process still holds its sockets but answers nothing (a GC pause, a stuck VM). */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A loopback TCP proxy whose link can be cut and kept down (new connections refused) for a while. */
export class OutageProxy {
  readonly #server: Server;
  readonly #target: number;
  readonly #pairs = new Set<[Socket, Socket]>();
  down = false;
  port = 0;

  constructor(targetPort: number) {
    this.#target = targetPort;
    this.#server = createServer((client) => this.#accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this.port;
  }

  /** Cuts every open connection and refuses new ones until `restore`. */
  cut(): void {
    this.down = true;
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    this.#pairs.clear();
  }

  restore(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    client.on('error', () => client.destroy());
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = connect({ port: this.#target, host: '127.0.0.1' });
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const drop = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
