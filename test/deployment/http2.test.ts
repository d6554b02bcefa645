/**
 * HTTP/2: with a certificate the hub serves HTTPS with HTTP/2, so one page holds more than the
 * six SSE streams HTTP/1.1 allows per origin. Real Chromium, a self-signed certificate made with
 * openssl, a real hub on a loopback port. WebSocket still works: it upgrades over HTTP/1.1 on the
 * same TLS port.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HeraldServer } from '@herald/server';
import { chromium, type Browser } from 'playwright-core';
import { API_KEY, JWT_SECRET, token, until } from '../support/hub.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, requireService } from '../support/services.ts';
import { selfSignedCert } from './support.ts';

/** More than HTTP/1.1's six connections per origin. */
const STREAMS = 8;

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

const PAGE = `<!doctype html><meta charset="utf-8"><title>h2</title>
<script>
  window.received = {};
  window.sources = [];
  window.openStreams = (token, count) => {
    for (let i = 0; i < count; i++) {
      const source = new EventSource('/sse?channel=h2:' + i + '&token=' + token);
      source.onmessage = (e) => { window.received[i] = JSON.parse(e.data).data; };
      window.sources.push(source);
    }
    const ws = new WebSocket('wss://' + location.host + '/ws');
    window.ws = { opened: false, pubs: [] };
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'connect', params: { token } }));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.id === 1) { window.ws.opened = true; ws.send(JSON.stringify({ id: 2, method: 'subscribe', params: { channel: 'h2:ws' } })); }
      if (m.id === 2) window.ws.subscribed = true;
      if (m.push === 'pub') window.ws.pubs.push(m.pub.data);
    };
  };
</script>`;

test('SSE over HTTP/2: more than six streams from one page', { timeout: 60_000 }, async (t) => {
  if (!(await requireService(t, 'chromium'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'herald-h2-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const { certFile, keyFile } = selfSignedCert(dir);
  const protocols = new Set<string>();
  const server = new HeraldServer({
    apiKey: API_KEY,
    jwtSecret: JWT_SECRET,
    tls: { cert: readFileSync(certFile), key: readFileSync(keyFile) },
    routes: (req, res, url) => {
      if (url.pathname !== '/') return false;
      protocols.add(req.httpVersion);
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return true;
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  cleanup.push(() => server.close());
  const hub = server.hub;

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'],
  });
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`https://127.0.0.1:${port}/`);
  assert.deepEqual([...protocols], ['2.0'], 'the page itself came over HTTP/2');
  const nextHop = await page.evaluate(
    () => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol,
  );
  assert.equal(nextHop, 'h2');

  const jwt = await token({ sub: 'h2-user', channels: ['h2:*'] });
  await page.evaluate(([tok, count]) => (window as any).openStreams(tok, count), [jwt, STREAMS] as const);
  // Over HTTP/1.1 the seventh stream would wait for a free connection and this would time out.
  await until(() => hub.stats.connections.sse === STREAMS, `${STREAMS} SSE streams open at the hub`, 10_000);
  await until(() => hub.stats.connections.websocket === 1, 'the WebSocket (HTTP/1.1 upgrade on the TLS port)');
  await page.waitForFunction(() => (window as any).ws.subscribed === true, undefined, { timeout: 10_000 });

  for (let i = 0; i < STREAMS; i++) await hub.publish({ channel: `h2:${i}`, data: { stream: i } });
  await hub.publish({ channel: 'h2:ws', data: { over: 'websocket' } });
  await page.waitForFunction((count) => Object.keys((window as any).received).length === count, STREAMS, {
    timeout: 10_000,
  });
  const received = await page.evaluate(() => (window as any).received);
  for (let i = 0; i < STREAMS; i++) assert.deepEqual(received[i], { stream: i });
  await page.waitForFunction(() => (window as any).ws.pubs.length === 1, undefined, { timeout: 10_000 });

  // Closing a stream resets it on the shared connection; the hub must notice each one.
  await page.evaluate(() => (window as any).sources.forEach((s: EventSource) => s.close()));
  await until(() => hub.stats.connections.sse === 0, 'the hub to see every HTTP/2 stream close', 10_000);
});
