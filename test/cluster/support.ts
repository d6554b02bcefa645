/**
 * Multi-node test support: real `herald serve` processes on one broker, private Redis and NATS
 * servers for destructive tests, WebSocket clients that resume like a careful SDK would, and a
 * publisher that retries with idempotency keys. Everything on loopback, every loop bounded, every
 * child process killed by its owner.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { API_KEY, JWT_SECRET } from '../support/hub.ts';
import { portOpen } from '../support/services.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs` naming `what`. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 20_000,
  everyMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// ---- build -------------------------------------------------------------------------------

const LOCK = join(tmpdir(), 'herald-cluster-build.lock');

/**
 * The processes run the built CLI: build first (incremental, a no-op when up to date). Test files
 * run in parallel, so the build holds a lock directory; a lock older than two minutes is stale.
 */
export async function buildOnce(): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      const age = Date.now() - (statSafe(LOCK) ?? Date.now());
      if (age > 120_000) rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error('timed out waiting for another test’s build');
      await sleep(200);
    }
  }
  try {
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const result = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`build failed:\n${result.stdout}${result.stderr}`);
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

function statSafe(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

// ---- processes -------------------------------------------------------------------------

/** Output kept per child process, for failure messages. */
class Tail {
  readonly #lines: string[] = [];
  push(chunk: Buffer): void {
    for (const line of chunk.toString().split('\n')) if (line !== '') this.#lines.push(line);
    if (this.#lines.length > 200) this.#lines.splice(0, this.#lines.length - 200);
  }
  toString(): string {
    return this.#lines.slice(-40).join('\n');
  }
}

export interface HubNodeOptions {
  readonly broker: string;
  readonly presenceTtlSeconds?: number;
  readonly env?: Readonly<Record<string, string>>;
}

/** One `herald serve` process, listening on a port of its choosing. */
export class HubNode {
  readonly name: string;
  readonly process: ChildProcess;
  readonly output = new Tail();
  port = 0;
  exited: number | string | null | undefined;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.process = child;
    child.stdout?.on('data', (chunk: Buffer) => this.output.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.output.push(chunk));
    child.once('exit', (code, signal) => (this.exited = code ?? signal));
  }

  static async start(name: string, options: HubNodeOptions): Promise<HubNode> {
    const child = spawn(process.execPath, [join(ROOT, 'apps/herald/bin/herald.js'), 'serve'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        NODE_OPTIONS: '',
        PORT: '0',
        HOST: '127.0.0.1',
        HERALD_BROKER: options.broker,
        HERALD_API_KEY: API_KEY,
        HERALD_JWT_SECRET: JWT_SECRET,
        HERALD_LOG_LEVEL: 'warn',
        HERALD_PRESENCE_TTL: String(options.presenceTtlSeconds ?? 30),
        ...options.env,
      },
    });
    const node = new HubNode(name, child);
    const listening = /listening on http:\/\/127\.0\.0\.1:(\d+)/;
    await until(
      () => {
        const match = listening.exec(node.output.toString());
        if (match) node.port = Number(match[1]);
        if (node.exited !== undefined) throw new Error(`${name} exited (${node.exited}):\n${node.output}`);
        return node.port > 0;
      },
      `${name} to listen`,
      30_000,
    );
    return node;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get alive(): boolean {
    return this.exited === undefined;
  }

  async readyStatus(): Promise<number> {
    try {
      return (await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2_000) })).status;
    } catch {
      return 0;
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.process.kill(signal);
  }

  /** SIGTERM (graceful drain), SIGKILL if it does not exit in time. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** A broker server of our own on a spare port, for tests that stop and start it. */
export class ServiceProcess {
  readonly port: number;
  readonly #command: string;
  readonly #args: readonly string[];
  readonly output = new Tail();
  #child: ChildProcess | undefined;
  readonly #cleanup: (() => void) | undefined;

  private constructor(port: number, command: string, args: readonly string[], cleanup?: () => void) {
    this.port = port;
    this.#command = command;
    this.#args = args;
    this.#cleanup = cleanup;
  }

  /** `redis-server` without persistence: a restart loses everything, as in the issue. */
  static async redis(): Promise<ServiceProcess> {
    const port = await freePort();
    const service = new ServiceProcess(port, '/usr/bin/redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
    ]);
    await service.start();
    return service;
  }

  /** `nats-server` with JetStream in a temporary store directory, kept across restarts. */
  static async nats(): Promise<ServiceProcess> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'herald-nats-'));
    const service = new ServiceProcess(
      port,
      '/usr/sbin/nats-server',
      ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir],
      () => rmSync(dir, { recursive: true, force: true }),
    );
    await service.start();
    return service;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async start(): Promise<void> {
    const child = spawn(this.#command, this.#args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => this.output.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.output.push(chunk));
    this.#child = child;
    await until(() => portOpen(this.port, '127.0.0.1', 200), `${this.#command} on ${this.port}`, 15_000, 50);
  }

  /** SIGKILL: a crash, not a shutdown. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.kill();
    this.#cleanup?.();
  }
}

// ---- backends on the shared services ------------------------------------------------------

/** A key prefix (Redis) or namespace (NATS) of this run, and a way to delete it afterwards. */
export function uniquePrefix(): string {
  return `hc_${randomBytes(5).toString('hex')}`;
}

// The shared-service cleanups live in test/support; re-exported for the tests that import them from here.
export { deleteRedisPrefix } from '../support/redis.ts';
export { deleteNatsNamespace } from '../support/nats.ts';

// ---- clients -----------------------------------------------------------------------------

export interface Position {
  offset: number;
  epoch: string;
}

export interface ReceivedPub {
  offset: number;
  epoch: string;
  data: any;
}

/**
 * A WebSocket client following one channel as the protocol asks: it resumes with `since` after
 * every close (on whichever node `pick` names) and after every `unsub` push, and counts each
 * `recovered: false` as being told. It checks every publication against its position, so a
 * silent gap or a duplicate shows up in `violations`.
 */
export class ResumingClient {
  readonly channel: string;
  readonly received: ReceivedPub[] = [];
  readonly violations: string[] = [];
  /** clientIds this client had, one per connection. */
  readonly clientIds: string[] = [];
  position: Position | undefined;
  /** Answers with `recovered: false`. */
  told = 0;
  resumes = 0;
  connections = 0;
  /** Where the current connection goes. */
  url = '';
  readonly #token: string;
  readonly #pick: () => string;
  #socket: WebSocket | undefined;
  #nextId = 1;
  readonly #replies = new Map<number, (reply: any) => void>();
  #closing = false;
  #reconnecting = false;
  #opening = false;
  #subscribed = false;

  constructor(channel: string, token: string, pick: () => string) {
    this.channel = channel;
    this.#token = token;
    this.#pick = pick;
  }

  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** Connects and subscribes; retries (bounded) while the hub answers with errors. */
  async open(url = this.#pick()): Promise<void> {
    this.#opening = true;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#connect(url);
          await this.#subscribe();
          return;
        } catch (error) {
          this.#drop();
          if (this.#closing) return;
          if (attempt >= 100) throw error;
          await sleep(Math.min(50 * attempt, 500));
          url = this.#pick();
        }
      }
    } finally {
      this.#opening = false;
    }
  }

  /** Moves to another node on purpose (a client roaming, or a load balancer's choice). */
  async moveTo(url: string): Promise<void> {
    this.#reconnecting = true;
    this.#drop();
    try {
      await this.open(url);
    } finally {
      this.#reconnecting = false;
    }
  }

  close(): void {
    this.#closing = true;
    this.#drop();
  }

  #drop(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#subscribed = false;
    socket?.removeAllListeners('close');
    socket?.on('error', () => undefined);
    socket?.terminate();
  }

  async #connect(url: string): Promise<void> {
    this.url = url;
    const socket = new WebSocket(url);
    this.#socket = socket;
    socket.on('error', () => undefined);
    socket.on('message', (data) => this.#onMessage(socket, JSON.parse(data.toString())));
    socket.on('close', () => {
      for (const resolve of this.#replies.values()) resolve({ error: { code: 'closed' } });
      this.#replies.clear();
      // While opening, the failed attempt is retried by `open` itself.
      if (this.#socket === socket && !this.#opening) void this.#reconnect();
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed before open')));
    });
    const reply = await this.#call('connect', { token: this.#token });
    if (reply.error) throw new Error(`connect: ${reply.error.code}`);
    this.clientIds.push(reply.result.clientId);
    this.connections++;
  }

  async #subscribe(): Promise<void> {
    const since = this.position;
    // The answer is applied as it arrives, before the live pushes that follow it in the same read.
    const reply = await this.#call('subscribe', { channel: this.channel, ...(since ? { since } : {}) }, (answer) => {
      if (answer.error) return;
      const result = answer.result;
      if (since === undefined) {
        this.position = { offset: result.offset, epoch: result.epoch };
      } else if (result.recovered === true) {
        this.resumes++;
        for (const pub of result.publications) this.#accept(pub, 'recovery');
      } else {
        this.told++;
        this.position = { offset: result.offset, epoch: result.epoch };
      }
      this.#subscribed = true;
    });
    if (reply.error) throw new Error(`subscribe: ${reply.error.code}`);
  }

  #call(method: string, params: Record<string, unknown>, onReply?: (reply: any) => void): Promise<any> {
    const socket = this.#socket;
    if (socket === undefined || socket.readyState !== WebSocket.OPEN) {
      return Promise.resolve({ error: { code: 'closed' } });
    }
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#replies.set(id, (reply) => {
        onReply?.(reply);
        resolve(reply);
      });
      socket.send(JSON.stringify({ id, method, params }));
    });
  }

  #onMessage(socket: WebSocket, message: any): void {
    if (socket !== this.#socket) return;
    if (typeof message.id === 'number') {
      this.#replies.get(message.id)?.(message);
      this.#replies.delete(message.id);
      return;
    }
    if (message.push === 'pub' && message.pub.channel === this.channel) this.#accept(message.pub, 'live');
    else if (message.push === 'unsub' && message.channel === this.channel) void this.#resubscribe();
  }

  #accept(pub: any, how: string): void {
    const at = this.position;
    if (at === undefined || pub.epoch !== at.epoch || pub.offset !== at.offset + 1) {
      this.violations.push(`${how} ${pub.offset}/${pub.epoch} after ${at?.offset}/${at?.epoch}`);
      return;
    }
    this.position = { offset: pub.offset, epoch: pub.epoch };
    this.received.push({ offset: pub.offset, epoch: pub.epoch, data: pub.data });
  }

  /** The hub ended the subscription (it lost its position): subscribe again from ours. */
  async #resubscribe(): Promise<void> {
    this.#subscribed = false;
    const socket = this.#socket;
    // A new connection resubscribes by itself: this loop is for the one that got the `unsub`.
    for (
      let attempt = 1;
      attempt <= 100 && !this.#closing && socket !== undefined && this.#socket === socket;
      attempt++
    ) {
      try {
        await this.#subscribe();
        return;
      } catch {
        await sleep(Math.min(50 * attempt, 500));
      }
    }
  }

  async #reconnect(): Promise<void> {
    if (this.#closing || this.#reconnecting) return;
    this.#reconnecting = true;
    this.#subscribed = false;
    try {
      await sleep(20 + Math.random() * 100);
      await this.open(this.#pick());
    } catch (error) {
      this.violations.push(`could not reconnect: ${String(error)}`);
    } finally {
      this.#reconnecting = false;
    }
  }
}

/** Opens many clients, a bounded number at a time. */
export async function openAll(
  clients: readonly ResumingClient[],
  at: (i: number) => string,
  batch = 50,
): Promise<void> {
  for (let i = 0; i < clients.length; i += batch) {
    await Promise.all(clients.slice(i, i + batch).map((c, j) => c.open(at(i + j))));
  }
}

// ---- publishing --------------------------------------------------------------------------

export interface Acked extends Position {
  readonly channel: string;
  readonly n: number;
}

/**
 * Publishes over the server API, each publication with an idempotency key so that a retry on
 * another node (after a 503 or a dead node) is applied once.
 */
export class Publisher {
  readonly acked: Acked[] = [];
  failures = 0;
  #n = 0;
  readonly #id = randomBytes(4).toString('hex');

  constructor(readonly pick: () => string) {}

  async publish(channel: string, data: Record<string, unknown> = {}, maxAttempts = 400): Promise<Acked> {
    const n = ++this.#n;
    const body = JSON.stringify({ channel, data: { n, ...data }, idempotencyKey: `pub-${this.#id}-${n}` });
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(`${this.pick()}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(5_000),
        });
        const answer = (await response.json()) as { offset: number; epoch: string };
        if (response.status === 200) {
          const acked = { channel, n, offset: answer.offset, epoch: answer.epoch };
          this.acked.push(acked);
          return acked;
        }
      } catch {
        // a node that died or a connection cut: retry elsewhere
      }
      this.failures++;
      if (attempt >= maxAttempts) throw new Error(`publish ${n} on ${channel} failed ${attempt} times`);
      await sleep(25);
    }
  }
}

export async function api(url: string, path: string): Promise<any> {
  const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
  if (response.status !== 200) throw new Error(`GET ${path}: ${response.status}`);
  return response.json();
}

/** A round-robin picker over the nodes still alive. */
export function roundRobin(nodes: readonly HubNode[], ws = true): () => string {
  let i = 0;
  return () => {
    const alive = nodes.filter((n) => n.alive);
    const node = alive[i++ % Math.max(1, alive.length)] ?? nodes[0];
    if (node === undefined) throw new Error('no nodes');
    return ws ? node.wsUrl : node.url;
  };
}

/** A few clients that are not where `done` wants them, for failure messages. */
export function stragglers(clients: readonly ResumingClient[], done: (c: ResumingClient) => boolean): string {
  const late = clients.filter((c) => !done(c));
  const sample = late.slice(0, 3).map((c) => ({
    channel: c.channel,
    position: c.position,
    subscribed: c.subscribed,
    connections: c.connections,
    told: c.told,
    violations: c.violations.slice(0, 3),
    url: c.url,
  }));
  return `${late.length} clients: ${JSON.stringify(sample)}`;
}
