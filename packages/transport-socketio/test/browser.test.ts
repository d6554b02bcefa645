/**
 * A real browser: Chromium loads socket.io-client's own browser bundle from a page the hub
 * serves, connects (long-polling, then the upgrade to WebSocket), subscribes and receives
 * publications made through the HTTP API, and publishes with an ack; over plain HTTP/1.1, and
 * over HTTPS where Chromium long-polls on HTTP/2 and upgrades over HTTP/1.1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { it, type TestContext } from 'node:test';
import { chromium } from 'playwright-core';
import { sleep, token } from '../../../test/support/hub.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, requireService } from '../../../test/support/services.ts';
import { startSioHub } from './support.ts';

const bundle = readFileSync(
  join(dirname(createRequire(import.meta.url).resolve('socket.io-client/package.json')), 'dist/socket.io.min.js'),
);

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script src="/socket.io.min.js"></script>
<script>
  window.received = [];
  window.acks = [];
  const params = new URLSearchParams(location.search);
  const socket = io({ auth: { token: params.get('token') } });
  window.socket = socket;
  socket.onAny((event, ...args) => window.received.push({ event, args }));
  socket.on('connect', () => {
    socket.emit('subscribe', { channel: 'browser:1' }, (ack) => window.acks.push(ack));
  });
</script>`;

it('Chromium with the socket.io-client bundle subscribes, receives and publishes', async (t) => {
  if (!(await requireService(t, 'chromium'))) return;
  await inChromium(t, {});
});

it('Chromium over HTTPS: long-polling on HTTP/2, then the upgrade', async (t) => {
  if (!(await requireService(t, 'chromium'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'herald-sio-tls-'));
  try {
    const result = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(result.status, 0, `openssl: ${result.stderr}`);
    const tls = { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
    const polledOver = await inChromium(t, { tls });
    assert.ok(polledOver.includes('h2'), `long-polling went over HTTP/2 (${polledOver.join(', ')})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs the page against a hub with `options`; returns the protocols the page's polls used. */
async function inChromium(t: TestContext, options: { tls?: { cert: Buffer; key: Buffer } }): Promise<string[]> {
  const hub = await startSioHub({
    ...options,
    routes: (_req, res, url) => {
      if (url.pathname === '/socket.io.min.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundle);
        return true;
      }
      if (url.pathname === '/page') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
        return true;
      }
      return false;
    },
  });
  const secure = options.tls !== undefined;
  const base = secure ? hub.url.replace('http:', 'https:') : hub.url;
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: secure ? [...CHROMIUM_ARGS, '--ignore-certificate-errors'] : CHROMIUM_ARGS,
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/page?token=${await token({ sub: 'browser-user' })}`);
    const subscribed = await eventually(
      () => page.evaluate(() => (window as any).acks as any[]),
      (acks) => acks.length > 0,
      'the subscribe ack in the page',
    );
    assert.equal(subscribed[0]?.ok, true, JSON.stringify(subscribed));
    // In-process (the HTTPS hub's certificate is one fetch would refuse); the same path as the HTTP API.
    const ack = (await hub.server.hub.publish({
      channel: 'browser:1',
      data: { hello: 'browser' },
      event: 'greeting',
    })) as {
      offset: number;
    };
    await hub.server.hub.publish({ channel: 'browser:1', data: 'plain' });
    const received = await eventually(
      () =>
        page.evaluate(() =>
          ((window as any).received as any[]).filter((r) => r.event === 'greeting' || r.event === 'message'),
        ),
      (list) => list.length >= 2,
      'two publications in the page',
    );
    assert.equal(received[0].event, 'greeting');
    assert.deepEqual(received[0].args[0], { hello: 'browser' });
    assert.equal(received[0].args[1].offset, ack.offset);
    assert.equal(received[1].event, 'message');
    assert.equal(received[1].args[0].data, 'plain');
    const published = await page.evaluate(() =>
      (window as any).socket.timeout(10_000).emitWithAck('publish', { channel: 'browser:1', data: { from: 'page' } }),
    );
    assert.equal(published.ok, true);
    assert.equal(published.offset, ack.offset + 2);
    const transport = await eventually(
      () => page.evaluate(() => (window as any).socket.io.engine.transport.name as string),
      (name) => name === 'websocket',
      'the upgrade to WebSocket',
    );
    assert.equal(transport, 'websocket');
    const protocols = await page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .filter((e) => e.name.includes('/socket.io/'))
        .map((e) => (e as PerformanceResourceTiming).nextHopProtocol),
    );
    t.diagnostic(`${browser.version()}: long-polling over ${[...new Set(protocols)].join(', ')}, then WebSocket`);
    return protocols;
  } finally {
    await browser.close();
    await hub.close();
  }
}

/** Reads `read()` until `done` holds (bounded: 20 s), then returns the last value. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(50);
  }
}
