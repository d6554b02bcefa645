/**
 * Bad input, HTTP level: at least 1,000 malformed requests written over raw TCP (huge headers,
 * bad methods, bad bodies, bad Last-Event-ID and cursors, bad query strings, broken framing),
 * each of which must get the status PROTOCOL.md section 4 (or RFC 9110/9112) prescribes, while
 * the hub stays up, under its RSS bound, and the bystanders keep receiving.
 *
 * The same corpus then runs against the TLS listener (HTTP/1.1 inside raw TLS connections), with
 * the bad input only a TLS listener sees (support/tls-cases.ts): bytes that are not TLS,
 * truncated and corrupted handshakes, silent clients, broken HTTP/2 prefaces and frames.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as h2Connect } from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it, type TestContext } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { selfSignedCert } from '../deployment/support.ts';
import { API_KEY, token } from '../support/hub.ts';
import { startChildHub, MiB, mib, type ChildHub } from './support/child-hub.ts';
import { envInt, pool, recordFigures } from './support/figures.ts';
import { prng } from './support/frame-cases.ts';
import {
  captureClientHello,
  h2FrameTypes,
  H2,
  tlsCases,
  type TlsCase,
  type TlsExpectation,
} from './support/tls-cases.ts';
import { Witness } from './support/witness.ts';

const RSS_BOUND = 250 * MiB;
const REQUESTS = envInt('HERALD_FUZZ_HTTP', 1000);
const SEED = envInt('HERALD_FUZZ_SEED', 20_251_121);
/** Rounds of the TLS-level cases (about 26 connections each). */
const TLS_ROUNDS = envInt('HERALD_FUZZ_TLS_ROUNDS', 4);
/** A connection the hub has not ended by then is a failure (its timeouts are 5 s and 10 s). */
const END_DEADLINE_MS = 30_000;

interface HttpCase {
  readonly category: string;
  readonly detail: string;
  readonly raw: Buffer;
  /** Acceptable statuses; 0 = the hub may close the connection without an answer. */
  readonly expect: readonly number[];
}

function cases(seed: number, count: number, port: number, jwt: string): HttpCase[] {
  const rnd = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const junk = (n: number, alphabet = 'abcXYZ019~,!$%&*()[]{}<>\'"\\ ;:=+-_.'): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[int(0, alphabet.length - 1)];
    return s;
  };
  const host = `Host: 127.0.0.1:${port}\r\n`;
  const req = (head: string, body = ''): Buffer => Buffer.from(`${head}${body}`, 'latin1');
  const get = (path: string, headers = ''): Buffer =>
    req(`GET ${path} HTTP/1.1\r\n${host}${headers}Connection: close\r\n\r\n`);
  const publish = (body: string | Buffer, headers = `Content-Length: ${Buffer.byteLength(body)}\r\n`): Buffer =>
    Buffer.concat([
      req(
        `POST /api/publish HTTP/1.1\r\n${host}Authorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\n${headers}Connection: close\r\n\r\n`,
      ),
      typeof body === 'string' ? Buffer.from(body) : body,
    ]);
  const badCursor = (): string =>
    pick([
      junk(int(1, 200)),
      'h2,a~1~x',
      `h1,${junk(20)}~1~x`,
      'h1,orders~-1~x',
      'h1,orders~1.5~x',
      'h1,orders~9999999999999999~x',
      'h1,orders~1~',
      'h1,orders~1~' + 'e'.repeat(65),
      'h1,orders~1~x~y',
      'h1,or*ders~1~x',
      'h1,,orders~1~x',
      `h1,${'x'.repeat(201)}~1~x`,
      'h1,orders~1~x,' + junk(5),
    ]);
  const generators: Array<() => HttpCase> = [
    () => {
      const size = int(17, 96) * 1024;
      return {
        category: 'huge headers',
        detail: `one ${size}-byte header`,
        raw: req(`GET /healthz HTTP/1.1\r\n${host}X-Big: ${'a'.repeat(size)}\r\n\r\n`),
        expect: [431],
      };
    },
    () => {
      const n = int(1_500, 4_000);
      let headers = '';
      for (let i = 0; i < n; i++) headers += `X-H${i}: ${junk(8, 'abc')}\r\n`;
      return {
        category: 'huge headers',
        detail: `${n} headers`,
        raw: req(`GET /healthz HTTP/1.1\r\n${host}${headers}\r\n`),
        expect: [431],
      };
    },
    () => ({
      category: 'huge headers',
      detail: 'request line of 40 KB',
      raw: req(`GET /sse?channel=${'a'.repeat(40_000)} HTTP/1.1\r\n${host}\r\n`),
      expect: [431],
    }),
    () => {
      const method = pick(['FOO', 'get', 'G3T', 'GET\u0000', 'BREW', 'X'.repeat(int(20, 200)), 'PRI', '']);
      return {
        category: 'bad method',
        detail: JSON.stringify(method.slice(0, 20)),
        raw: req(`${method} /sse?channel=a HTTP/1.1\r\n${host}\r\n`),
        expect: [400],
      };
    },
    () => {
      const [method, path] = pick([
        ['DELETE', '/sse?channel=a'],
        ['PUT', '/poll?channel=a'],
        ['POST', '/sse?channel=a'],
        ['PATCH', '/poll?channel=a'],
        ['GET', '/api/publish'],
        ['DELETE', '/api/publish'],
        ['POST', '/api/channels'],
        ['PUT', '/api/channels/a/history'],
      ] as const);
      return {
        category: 'bad method',
        detail: `${method} ${path}`,
        raw: req(
          `${method} ${path} HTTP/1.1\r\n${host}Authorization: Bearer ${API_KEY}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        ),
        expect: [405],
      };
    },
    () => {
      const [body, status] = pick([
        ['not json', 400],
        ['{"channel":"a","data":', 400],
        ['[]', 400],
        ['null', 400],
        ['"x"', 400],
        ['42', 400],
        ['{}', 400],
        ['{"channel":"a"}', 400],
        ['{"channel":"a b","data":1}', 400],
        ['{"channel":"a","data":1,"event":"herald.connected"}', 400],
        ['{"channel":"a","data":1,"event":""}', 400],
        ['{"channel":"a","data":1,"ephemeral":"yes"}', 400],
        ['{"channel":"a","data":1,"idempotencyKey":""}', 400],
        ['{"channel":"a","data":1,"idempotencyKey":"a\\tb"}', 400],
        ['{"channel":"a","data":1,"event":"line\\nbreak"}', 400],
        [`{"channel":"a","data":${'['.repeat(30_000)}${']'.repeat(30_000)}}`, 400],
        [`{"channel":"a","data":"${'x'.repeat(70_000)}"}`, 413],
        [`{"channel":"a","data":"${'x'.repeat(200_000)}"}`, 413],
        ['{"channel":"a","data":1,"__proto__":{"admin":true}}', 200],
      ] as const);
      return { category: 'bad body', detail: body.slice(0, 40), raw: publish(body), expect: [status] };
    },
    () => ({
      category: 'bad body',
      detail: 'declared 100 GB',
      raw: publish('{}', 'Content-Length: 100000000000\r\n'),
      expect: [413],
    }),
    () => {
      const [headers, expect] = pick([
        ['Content-Length: -1\r\n', [400]],
        ['Content-Length: abc\r\n', [400]],
        ['Content-Length: 1, 2\r\n', [400]],
        ['Content-Length: 2\r\nContent-Length: 3\r\n', [400]],
        ['Content-Length: 2\r\nTransfer-Encoding: chunked\r\n', [400]],
        ['Transfer-Encoding: chunked\r\n', [400]],
        ['Transfer-Encoding: gzip, chunked, identity\r\n', [400]],
      ] as const);
      const body = headers.includes('chunked') ? 'zz\r\n{}\r\n0\r\n\r\n' : '{}';
      return { category: 'bad framing', detail: headers.trim(), raw: publish(body, headers), expect };
    },
    () => {
      const line = pick([
        `GET /healthz HTTP/1.1\r\nX-A: b\u0000c\r\n${host}\r\n`,
        `GET /healthz HTTP/1.1\r\nNoColon\r\n${host}\r\n`,
        `GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n`,
        `GET /healthz HTTP/1.1\r\n${host}X-Fold: a\r\n b\r\n\r\n`,
        `GET /healthz HTTP/9.9\r\n${host}\r\n`,
        `GET /health z HTTP/1.1\r\n${host}\r\n`,
        `GET /healthz HTTP/1.1\n${host}\n\n\u0000`,
        `GET /healthz HTTP/1.1\r\n\r\n`,
        `\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u01fc\u0003\u0003`,
        `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`,
      ]);
      return { category: 'bad framing', detail: JSON.stringify(line.slice(0, 30)), raw: req(line), expect: [400] };
    },
    () => {
      const cursor = badCursor();
      const useHeader = rnd() < 0.5;
      const path = useHeader ? `/sse?channel=orders` : `/sse?channel=orders&lastEventId=${encodeURIComponent(cursor)}`;
      return {
        category: 'bad cursor',
        detail: `SSE ${useHeader ? 'Last-Event-ID' : 'lastEventId'} ${cursor.slice(0, 30)}`,
        raw: get(path, useHeader ? `Last-Event-ID: ${cursor}\r\n` : ''),
        expect: [400],
      };
    },
    () => {
      const cursor = badCursor();
      return {
        category: 'bad cursor',
        detail: `poll cursor ${cursor.slice(0, 30)}`,
        raw: get(`/poll?channel=orders&cursor=${encodeURIComponent(cursor)}&token=${jwt}`),
        expect: [400],
      };
    },
    () => {
      const [path, status] = pick([
        ['/sse', 400],
        ['/sse?', 400],
        ['/sse?channel=', 400],
        ['/sse?channel=%', 400],
        ['/sse?channel=%zz', 400],
        ['/sse?channel=%E0%A4%A', 400],
        ['/sse?channel=a%00b', 400],
        ['/sse?channel=a;b', 400],
        ['/sse?channel=a*', 400],
        [`/sse?${Array.from({ length: 129 }, (_, i) => `channel=c${i}`).join('&')}`, 400],
        ['/sse?channel=a&token=%zz', 401],
        ['/sse?channel=a&token=', 401],
        ['/sse?channel=a&token=a.b.c', 401],
        ['/sse?__proto__=x&constructor=y', 400],
        ['/poll?channel=a&timeout=abc', 400],
        ['/poll?channel=a&timeout=-1', 400],
        ['/poll?channel=a&timeout=1e309', 400],
        ['/poll?channel=a&timeout=NaN', 400],
        ['/poll', 400],
        ['/api/channels/a/history?limit=-1', 400],
        ['/api/channels/a/history?limit=1e3', 400],
        ['/api/channels/a/history?limit=99999999999', 400],
        ['/api/channels/a/history?since=1', 400],
        ['/api/channels/a/history?since=abc&epoch=x', 400],
        ['/api/channels/a/history?since=1&epoch=bad!', 400],
        ['/api/channels/%E0%A4%A/history', 400],
        ['/api/channels/a%2A/history', 400],
        ['/api/channels/a/presence/extra', 404],
        ['/api/nope', 404],
        ['/nope?x=%', 404],
      ] as const);
      const auth = path.startsWith('/api/') ? `Authorization: Bearer ${API_KEY}\r\n` : '';
      return { category: 'bad query', detail: path.slice(0, 60), raw: get(path, auth), expect: [status] };
    },
    () => {
      const [header, status] = pick([
        [`Authorization: Bearer ${junk(int(1, 4000), 'abcdefABCDEF0123456789-_.')}\r\n`, 401],
        ['Authorization: Basic dXNlcjpwYXNz\r\n', 401],
        ['Authorization: Bearer\r\n', 401],
        [`Authorization: Bearer ${API_KEY} extra\r\n`, 401],
        [`Authorization: Bearer ${API_KEY.slice(0, -1)}\r\n`, 401],
      ] as const);
      return {
        category: 'bad credentials',
        detail: header.slice(0, 40),
        raw: req(`GET /api/channels HTTP/1.1\r\n${host}${header}Connection: close\r\n\r\n`),
        expect: [status],
      };
    },
  ];
  return Array.from({ length: count }, (_, i) => (generators[i % generators.length] as () => HttpCase)());
}

/** Opens a raw connection to the listener under test: plain TCP, or TLS with HTTP/1.1. */
type Dial = () => Duplex;

const plainDial =
  (port: number): Dial =>
  () =>
    connect({ port, host: '127.0.0.1' });

const tlsDial =
  (port: number): Dial =>
  () =>
    tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });

/** Writes the raw request and returns the status of the first answer (0 = closed without one). */
function exchange(dial: Dial, raw: Buffer, timeoutMs = 20_000): Promise<number> {
  return new Promise((resolve) => {
    const socket = dial();
    let head = '';
    const timer = setTimeout(() => done(-1), timeoutMs);
    const done = (status: number): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    socket.on('error', () => done(statusOf(head)));
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n')) done(statusOf(head));
    });
    socket.on('close', () => done(statusOf(head)));
    socket.write(raw);
  });
}

function statusOf(head: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
}

/**
 * The malformed-request corpus against one listener, with a witness on the same hub: every
 * request gets its prescribed status, the hub stays up and under its RSS bound.
 */
async function runCorpus(
  t: TestContext,
  scenario: string,
  hub: ChildHub,
  dial: Dial,
  witnessAt: { url: string; wsUrl: string },
): Promise<void> {
  const jwt = await token({ sub: 'fuzzer', channels: ['*'] });
  const witness = await Witness.start(witnessAt);
  const started = Date.now();
  const wrong: string[] = [];
  const byCategory = new Map<string, number>();
  try {
    await pool(cases(SEED, REQUESTS, hub.port, jwt), 16, async (c, i) => {
      const status = await exchange(dial, c.raw);
      byCategory.set(c.category, (byCategory.get(c.category) ?? 0) + 1);
      if (!c.expect.includes(status) && wrong.length < 30) {
        wrong.push(`#${i} ${c.category} (${c.detail}): got ${status}, want ${c.expect.join('|')}`);
      }
    });
  } catch (error) {
    witness.abort();
    throw error;
  }
  const seconds = (Date.now() - started) / 1000;
  const report = await witness.finish();
  const { peak } = hub.rss();
  recordFigures(t, scenario, {
    requests: REQUESTS,
    seed: SEED,
    seconds,
    peakRssMiB: Math.round(peak / MiB),
    categories: Object.fromEntries(byCategory),
    witness: report,
  });
  assert.equal(hub.exitStatus, undefined, `the hub exited: ${hub.stderr()}`);
  assert.deepEqual(wrong, [], 'wrong statuses');
  assert.ok(peak < RSS_BOUND, `peak RSS ${mib(peak)} is over the bound ${mib(RSS_BOUND)}`);
}

describe('fuzz: malformed HTTP requests', () => {
  let hub: ChildHub;
  before(async () => {
    hub = await startChildHub();
  });
  after(() => hub.kill());

  it(`answers each of ${REQUESTS} malformed requests with the right status, and nobody else notices`, async (t) => {
    await runCorpus(t, 'fuzz-http', hub, plainDial(hub.port), hub);
  });
});

/** What the hub did with one TLS-level case; `open` = it had not ended the connection by the deadline. */
type TlsOutcome = TlsExpectation | 'open';

function tlsExchange(port: number, c: TlsCase): Promise<{ got: TlsOutcome; afterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket: Duplex =
      c.layer === 'tcp'
        ? connect({ port, host: '127.0.0.1' })
        : tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...c.tls });
    let secured = false;
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => finish(true), END_DEADLINE_MS);
    let finished = false;
    const finish = (open = false): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ got: open ? 'open' : classify(), afterMs: Date.now() - started });
    };
    const classify = (): TlsExpectation => {
      if (c.layer === 'tls' && !secured) return 'refused';
      const received = Buffer.concat(chunks);
      if ((socket as TLSSocket).alpnProtocol === 'h2')
        return h2FrameTypes(received).includes(H2.GOAWAY) ? 'goaway' : 'closed';
      const status = statusOf(received.toString('latin1'));
      return status === 0 ? 'closed' : status;
    };
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => finish());
    const send = (): void => {
      if (c.bytes.length > 0) socket.write(c.bytes);
    };
    if (c.layer === 'tcp') socket.once('connect', send);
    else
      socket.once('secureConnect', () => {
        secured = true;
        send();
      });
  });
}

/** One HTTP/2 request with node:http2, after the abuse: the listener still speaks h2. */
function h2Get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.on('error', reject);
    const req = session.request({ ':path': path });
    req.on('response', (headers) => {
      resolve(Number(headers[':status']));
      session.close();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('fuzz: the TLS listener (HTTPS with HTTP/2)', () => {
  let hub: ChildHub;
  let dir: string;
  let https: { url: string; wsUrl: string };
  const tlsVerification = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-fuzz-tls-'));
    const { certFile, keyFile } = selfSignedCert(dir);
    hub = await startChildHub({
      options: { tls: { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') } },
    });
    https = { url: `https://127.0.0.1:${hub.port}`, wsUrl: `wss://127.0.0.1:${hub.port}/ws` };
    // The witness's fetch, EventSource reader and WebSocket must trust the certificate this test
    // just made; Node 20's fetch takes no CA per request, so verification is off for this block
    // (loopback, to the hub under test only) and restored after it.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  });
  after(async () => {
    if (tlsVerification === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = tlsVerification;
    await hub.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`answers each of ${REQUESTS} malformed requests over TLS with the right status`, async (t) => {
    await runCorpus(t, 'fuzz-http-tls', hub, tlsDial(hub.port), https);
  });

  it('ends every connection that is not TLS, cuts its handshake short, breaks HTTP/2 or says nothing', async (t) => {
    const corpus = tlsCases(TLS_ROUNDS, await captureClientHello(), prng(SEED));
    // A channel of its own: the corpus test's witness published on the default one of this hub.
    const witness = await Witness.start(https, 'witness-tls');
    const wrong: string[] = [];
    // Per kind of case (the detail without its random numbers): how the hub ended them, and when.
    const byKind = new Map<string, { count: number; got: Set<TlsOutcome>; minEndMs: number; maxEndMs: number }>();
    const started = Date.now();
    try {
      // Every connection at once: the silent ones wait for the hub's timeouts in parallel.
      await pool(corpus, corpus.length, async (c, i) => {
        const { got, afterMs } = await tlsExchange(hub.port, c);
        const kind = `${c.category}: ${c.detail.replace(/\d+/g, 'N')}`;
        const entry = byKind.get(kind) ?? { count: 0, got: new Set(), minEndMs: Infinity, maxEndMs: 0 };
        entry.count++;
        entry.got.add(got);
        entry.minEndMs = Math.min(entry.minEndMs, afterMs);
        entry.maxEndMs = Math.max(entry.maxEndMs, afterMs);
        byKind.set(kind, entry);
        const ok = c.expect === 'closed' ? got !== 'open' : got === c.expect;
        if (!ok && wrong.length < 30) wrong.push(`#${i} ${c.category} (${c.detail}): got ${got}, want ${c.expect}`);
      });
    } catch (error) {
      witness.abort();
      throw error;
    }
    const h2Status = await h2Get(hub.port, '/healthz');
    const report = await witness.finish();
    const { peak } = hub.rss();
    recordFigures(t, 'fuzz-tls', {
      connections: corpus.length,
      seed: SEED,
      seconds: (Date.now() - started) / 1000,
      peakRssMiB: Math.round(peak / MiB),
      kinds: Object.fromEntries([...byKind].map(([kind, e]) => [kind, { ...e, got: [...e.got] }])),
      h2AfterwardsStatus: h2Status,
      witness: report,
    });
    assert.equal(hub.exitStatus, undefined, `the hub exited: ${hub.stderr()}`);
    assert.deepEqual(wrong, [], 'connections the hub did not end as it should');
    assert.equal(h2Status, 200, 'HTTP/2 still answers');
    assert.ok(peak < RSS_BOUND, `peak RSS ${mib(peak)} is over the bound ${mib(RSS_BOUND)}`);
  });
});
