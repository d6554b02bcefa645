/**
 * Acceptance support: the hub as a user runs it (`herald serve` in a child process, configured
 * by the environment only) and third-party clients on real sockets (`ws`, fetch, a raw
 * event-stream reader). Nothing here imports the hub's code: the suite checks PROTOCOL.md from
 * the outside, so it cannot share the hub's misreadings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const API_KEY = 'acceptance-api-key-0123456789abcdef';
export const JWT_SECRET = 'acceptance-jwt-secret-0123456789abcdef0123456789';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs` naming `what`. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

/** `promise`'s value, or `fallback` after `ms` (the timer is cleared, so it never holds the process). */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A channel name no other test uses. */
export function uniqueChannel(prefix = 'acc'): string {
  return `${prefix}:${randomBytes(5).toString('hex')}`;
}

// ---- the hub process ----------------------------------------------------------------------

const running = new Set<Herald>();
// A test runner that is killed (a timeout, ^C) must not leave hubs behind.
process.once('exit', () => {
  for (const hub of running) hub.process.kill('SIGKILL');
});

/** One `herald serve` process on a port of its choosing, configured by `env`. */
export class Herald {
  readonly process: ChildProcess;
  port = 0;
  host = '';
  exitCode: number | string | null | undefined;
  readonly exited: Promise<number | string | null>;
  #output = '';

  private constructor(child: ChildProcess) {
    this.process = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.#output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.#output += chunk.toString()));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? signal;
        running.delete(this);
        resolve(this.exitCode);
      }),
    );
  }

  /**
   * Starts `node apps/herald/bin/herald.js serve` with PORT=0 and the given environment (the API
   * key and JWT secret are set unless `env` sets them to `undefined`).
   */
  static async start(env: Record<string, string | undefined> = {}): Promise<Herald> {
    const full: Record<string, string> = {};
    const base: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      NODE_OPTIONS: '',
      PORT: '0',
      HOST: '127.0.0.1',
      HERALD_API_KEY: API_KEY,
      HERALD_JWT_SECRET: JWT_SECRET,
      HERALD_LOG_LEVEL: 'warn',
      // HERALD_TEST_WORKERS=2 runs every hub of the suite as `herald serve --workers 2` (CI does).
      ...(process.env.HERALD_TEST_WORKERS === undefined ? {} : { HERALD_WORKERS: process.env.HERALD_TEST_WORKERS }),
      ...env,
    };
    for (const [key, value] of Object.entries(base)) if (value !== undefined) full[key] = value;
    const child = spawn(process.execPath, [join(ROOT, 'apps/herald/bin/herald.js'), 'serve'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: full,
    });
    const hub = new Herald(child);
    running.add(hub);
    const listening = /listening on http:\/\/([\d.]+):(\d+)/;
    await until(
      () => {
        const match = listening.exec(hub.#output);
        if (match) {
          hub.host = match[1] ?? '';
          hub.port = Number(match[2]);
        }
        if (hub.exitCode !== undefined) throw new Error(`herald exited (${hub.exitCode}):\n${hub.#output}`);
        return hub.port > 0;
      },
      () => `herald to listen:\n${hub.#output}`,
      30_000,
    );
    return hub;
  }

  get output(): string {
    return this.#output;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 8_000): Promise<void> {
    if (!this.alive) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.alive && this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    if (!this.alive) return;
    this.process.kill('SIGKILL');
    await this.exited;
  }
}

/** Kills every hub this test file started and has not stopped (for `after`). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((hub) => hub.kill()));
}

// ---- tokens --------------------------------------------------------------------------------

export interface Claims {
  /** `null` leaves `sub` out. */
  sub?: string | null;
  channels?: string[];
  publish?: string[];
  info?: unknown;
  /** Seconds from now for `exp` (negative: already past). */
  expiresIn?: number;
  [claim: string]: unknown;
}

/** An HS256 token with exactly the claims given (no `channels`/`publish` unless given). */
export async function mint(claims: Claims = {}, secret = JWT_SECRET): Promise<string> {
  const { sub = 'alice', expiresIn, ...rest } = claims;
  const body: Record<string, unknown> = { ...rest };
  if (sub !== null) body.sub = sub;
  if (expiresIn !== undefined) body.exp = Math.floor(Date.now() / 1000) + expiresIn;
  return new SignJWT(body).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

/** The same claims, unsigned, with `alg: none`. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

// ---- HTTP ------------------------------------------------------------------------------------

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

export async function http(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; signal?: AbortSignal } = {},
): Promise<Answer> {
  const body = init.body === undefined || typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  const response = await fetch(url, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    ...(body === undefined ? {} : { body }),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A server API call with the API key (or `bearer`). */
export function api(hub: Herald, method: string, path: string, body?: unknown, bearer = API_KEY): Promise<Answer> {
  return http(hub.url + path, { method, body, headers: { authorization: `Bearer ${bearer}` } });
}

export async function publish(
  hub: Herald,
  channel: string,
  data: unknown,
  extra: Record<string, unknown> = {},
): Promise<{ offset: number; epoch: string }> {
  const answer = await api(hub, 'POST', '/api/publish', { channel, data, ...extra });
  if (answer.status !== 200) throw new Error(`publish on ${channel}: ${answer.status} ${answer.text}`);
  return answer.json;
}

/** A GET with headers fetch will not send (`Host`), over node:http. */
export function rawGet(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      // A stream that stays open: keep what came in the first moment, then cut.
      const timer = setTimeout(() => res.destroy(), 300);
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('close', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The error shape of section 4, with its status. */
export function assertError(answer: Answer, status: number | number[], what = ''): void {
  const statuses = Array.isArray(status) ? status : [status];
  if (!statuses.includes(answer.status)) {
    throw new Error(
      `${what}: expected HTTP ${statuses.join(' or ')}, got ${answer.status} ${answer.text.slice(0, 300)}`,
    );
  }
  const error = answer.json?.error;
  if (
    typeof error !== 'object' ||
    error === null ||
    typeof error.code !== 'string' ||
    error.code === '' ||
    typeof error.message !== 'string' ||
    error.message === ''
  ) {
    throw new Error(`${what}: not {"error": {"code", "message"}}: ${answer.text.slice(0, 300)}`);
  }
}

// ---- metrics ---------------------------------------------------------------------------------

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = pair[2] as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[4]) });
  }
  return samples;
}

export async function metrics(hub: Herald): Promise<Sample[]> {
  return parseMetrics((await http(`${hub.url}/metrics`)).text);
}

/** The value of one sample (0 when absent), labels matched exactly on the ones given. */
export function metric(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

// ---- WebSocket -------------------------------------------------------------------------------

/** A `ws` client that keeps every frame in arrival order, replies and pushes alike. */
export class Ws {
  readonly socket: WebSocket;
  /** Every text frame, parsed (non-JSON frames as `{ raw }`), in arrival order. */
  readonly frames: any[] = [];
  close: { code: number; reason: string } | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('error', () => undefined);
    socket.on('message', (data, isBinary) => {
      const text = data.toString();
      try {
        this.frames.push(isBinary ? { binary: text } : JSON.parse(text));
      } catch {
        this.frames.push({ raw: text });
      }
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', (code, reason) => {
        this.close = { code, reason: reason.toString() };
        resolve(this.close);
      }),
    );
  }

  /** Opens the socket; rejects with `HTTP <status>` when the upgrade is refused. */
  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<Ws> {
    const socket = new WebSocket(url, options);
    const client = new Ws(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () =>
          reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })),
        );
      });
      socket.once('error', reject);
    });
  }

  /** Opens and sends `connect`; throws when the answer is an error. */
  static async connect(url: string, token?: string, options: WebSocket.ClientOptions = {}): Promise<Ws> {
    const client = await Ws.open(url, options);
    const reply = await client.call('connect', token === undefined ? {} : { token });
    if (reply.error) throw new Error(`connect: ${JSON.stringify(reply.error)}`);
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Sends a command and resolves with its answer (or rejects when the socket closes first). */
  async call(method: string, params?: Record<string, unknown>): Promise<any> {
    const id = this.#nextId++;
    this.send({ id, method, ...(params === undefined ? {} : { params }) });
    await this.waitFor(() => this.frames.some((f) => f.id === id), `answer to ${method} #${id}`);
    return this.frames.find((f) => f.id === id);
  }

  /** The result of a command; throws on an error answer. */
  async ok(method: string, params?: Record<string, unknown>): Promise<any> {
    const reply = await this.call(method, params);
    if (reply.error !== undefined) throw new Error(`${method}: ${JSON.stringify(reply.error)}`);
    return reply.result;
  }

  pushes(kind?: string): any[] {
    return this.frames.filter((f) => f.push !== undefined && (kind === undefined || f.push === kind));
  }

  /** Publications pushed for `channel`. */
  pubs(channel?: string): any[] {
    return this.pushes('pub')
      .map((p) => p.pub)
      .filter((p) => channel === undefined || p.channel === channel);
  }

  /** Waits for `predicate`; fails early when the socket closes while it does not hold. */
  async waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    await until(
      () => {
        if (predicate()) return true;
        if (this.close !== undefined) throw new Error(`socket closed (${this.close.code}) waiting for ${what}`);
        return false;
      },
      what,
      timeoutMs,
      10,
    );
  }

  /** Resolves with the close, or rejects after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  end(): void {
    this.socket.terminate();
  }
}

// ---- Server-Sent Events -------------------------------------------------------------------

export interface SseEvent {
  /** The `id:` field, undefined when the event had no `id:` line. */
  readonly id: string | undefined;
  /** The `event:` field, undefined when the event had no `event:` line. */
  readonly event: string | undefined;
  readonly data: string;
}

/**
 * One SSE response read with fetch and parsed per the WHATWG event-stream rules, keeping what
 * EventSource hides: the raw text, which fields each event had, `retry:` and comments.
 */
export class Sse {
  readonly status: number;
  readonly headers: Headers;
  /** The body of a refusal (not 200). */
  readonly body: string;
  raw = '';
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  readonly retries: number[] = [];
  ended = false;
  readonly done: Promise<void>;
  readonly #abort: AbortController;

  private constructor(response: Response, abort: AbortController, body: string) {
    this.status = response.status;
    this.headers = response.headers;
    this.body = body;
    this.#abort = abort;
    this.done =
      response.status === 200 && response.body !== null
        ? this.#read(response.body).finally(() => (this.ended = true))
        : Promise.resolve().then(() => void (this.ended = true));
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<Sse> {
    const abort = new AbortController();
    const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
    const body = response.status === 200 ? '' : await response.text();
    return new Sse(response, abort, body);
  }

  get json(): any {
    try {
      return JSON.parse(this.body);
    } catch {
      return undefined;
    }
  }

  /** Events named `name` (undefined: no `event:` line), data parsed. */
  named(name: string | undefined): any[] {
    return this.events.filter((e) => e.event === name).map((e) => JSON.parse(e.data));
  }

  /** Publication events: every event not named `herald.*`. */
  pubEvents(): SseEvent[] {
    return this.events.filter((e) => !(e.event ?? '').startsWith('herald.'));
  }

  pubs(): any[] {
    return this.pubEvents().map((e) => JSON.parse(e.data));
  }

  async waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    await until(
      () => {
        if (predicate()) return true;
        if (this.ended) throw new Error(`stream ended waiting for ${what}; raw:\n${this.raw.slice(-1500)}`);
        return false;
      },
      what,
      timeoutMs,
      10,
    );
  }

  close(): void {
    this.#abort.abort();
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    let id: string | undefined;
    let event: string | undefined;
    let data: string[] | undefined;
    const line = (text: string): void => {
      if (text === '') {
        if (data !== undefined) this.events.push({ id, event, data: data.join('\n') });
        id = undefined;
        event = undefined;
        data = undefined;
        return;
      }
      if (text.startsWith(':')) return void this.comments.push(text.slice(1).trim());
      const colon = text.indexOf(':');
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? '' : text.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') (data ??= []).push(value);
      else if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'retry' && /^\d+$/.test(value)) this.retries.push(Number(value));
    };
    const reader = body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const text = decoder.decode(value, { stream: true });
        this.raw += text;
        buffer += text;
        let match: RegExpExecArray | null;
        while ((match = /\r\n|\r(?!$)|\n/.exec(buffer)) !== null) {
          line(buffer.slice(0, match.index));
          buffer = buffer.slice(match.index + match[0].length);
        }
      }
    } catch {
      // aborted or cut: what was read stays
    }
  }
}

/** `/sse` or `/poll` query string: `channel` repeated, then the extra parameters. */
export function query(channels: readonly string[], extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const channel of channels) params.append('channel', channel);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return params.toString();
}

/** One long-poll request. */
export function poll(
  hub: { url: string },
  channels: readonly string[],
  extra: Record<string, string> = {},
): Promise<Answer> {
  return http(`${hub.url}/poll?${query(channels, extra)}`);
}

/** Offsets of publications, for compact comparisons. */
export const offsets = (pubs: readonly any[]): number[] => pubs.map((p) => p.offset);

/** [from, from+1, ..., to]. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
