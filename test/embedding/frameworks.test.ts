/**
 * Embedding with the real frameworks: the hub on an Express, Fastify, Koa and plain node:http
 * server under a prefix (WebSocket upgrades included, the app's own routes untouched), and the
 * fetch handler mounted in Hono (served by @hono/node-server) for SSE, long-poll and the server
 * API. The clients are the real SDK over real sockets; tokens are JWTs (an app's own sessions plug
 * in through the connect hook instead, see docs/embedding.md).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { serve } from '@hono/node-server';
import { Herald, type TransportName } from '@herald/client';
import { HeraldServer, attachHerald, heraldFetchHandler } from '@herald/server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import WebSocket from 'ws';
import { API_KEY, JWT_SECRET, token } from '../support/hub.js';

const FAST = { minReconnectDelayMs: 20, maxReconnectDelayMs: 100, upgradeProbeMs: 0 };

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

/** Subscribes with the SDK over `transport`, publishes through the server API, and returns what arrived. */
async function roundTrip(base: string, transport: TransportName, channel: string): Promise<unknown> {
  const client = new Herald(base, { token: await token(), transports: [transport], WebSocket, ...FAST });
  try {
    const sub = client.subscribe(channel);
    const received = new Promise((resolve) => sub.on('publication', (p) => resolve(p.data)));
    await new Promise<void>((resolve) => sub.on('state', (s) => s === 'subscribed' && resolve()));
    const res = await fetch(`${base}/api/publish`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel, data: { via: transport } }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const data = await received;
    // Publishing from the client goes over the same prefix (WebSocket command or HTTP).
    await client.publish(channel, { from: 'client' });
    return data;
  } finally {
    client.close();
  }
}

/** An upgrade outside the prefix, when the app has no WebSocket of its own: refused, not left hanging. */
async function upgradeOutsidePrefix(origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(origin.replace('http', 'ws') + '/elsewhere');
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => reject(new Error('opened')));
    ws.on('error', () => undefined);
  });
}

async function checkAttached(server: Server, origin: string): Promise<void> {
  const herald = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET });
  after(() => herald.close());
  await attachHerald(herald, server, { prefix: '/realtime' });
  const base = `${origin}/realtime`;
  assert.equal(await (await fetch(`${origin}/hello`)).text(), 'app');
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  // `/realtimeX` is not under `/realtime`: it is the app's.
  assert.notEqual((await fetch(`${origin}/realtimeX/healthz`)).status, 200);
  assert.deepEqual(await roundTrip(base, 'websocket', 'embed.ws'), { via: 'websocket' });
  assert.deepEqual(await roundTrip(base, 'sse', 'embed.sse'), { via: 'sse' });
  assert.deepEqual(await roundTrip(base, 'poll', 'embed.poll'), { via: 'poll' });
  assert.equal(await upgradeOutsidePrefix(origin), 404);
  assert.equal(await (await fetch(`${origin}/hello`)).text(), 'app');
}

describe('attachHerald', () => {
  test('Express 5', async () => {
    const app = express();
    app.get('/hello', (_req, res) => {
      res.send('app');
    });
    const server = createServer(app);
    after(() => server.close());
    await checkAttached(server, await listen(server));
  });

  test('Fastify 5', async () => {
    const app = Fastify();
    app.get('/hello', () => 'app');
    after(() => app.close());
    await app.listen({ port: 0, host: '127.0.0.1' });
    await checkAttached(app.server, `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  });

  test('Koa 3', async () => {
    const app = new Koa();
    app.use((ctx) => {
      if (ctx.path === '/hello') ctx.body = 'app';
    });
    const server = createServer(app.callback());
    after(() => server.close());
    await checkAttached(server, await listen(server));
  });

  test('plain node:http, with its own WebSocket endpoint kept', async () => {
    const server = createServer((req, res) => res.end(req.url === '/hello' ? 'app' : 'other'));
    // The app's own upgrade listener still gets the upgrades outside the prefix.
    let appUpgrades = 0;
    server.on('upgrade', (_req, socket) => {
      appUpgrades += 1;
      socket.end('HTTP/1.1 418 I am a teapot\r\nContent-Length: 0\r\n\r\n');
    });
    after(() => server.close());
    const origin = await listen(server);
    const herald = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET });
    after(() => herald.close());
    await attachHerald(herald, server, { prefix: '/realtime' });
    assert.equal(await upgradeOutsidePrefix(origin), 418);
    assert.equal(appUpgrades, 1);
    assert.deepEqual(await roundTrip(`${origin}/realtime`, 'websocket', 'embed.plain'), { via: 'websocket' });
  });

  test('a bad prefix is refused with an error that names it', async () => {
    const herald = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET });
    await assert.rejects(attachHerald(herald, createServer(), { prefix: 'realtime/' }), /"prefix"/);
  });
});

describe('heraldFetchHandler', () => {
  test('Hono on @hono/node-server: SSE, long-poll and the server API', async () => {
    const herald = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET });
    after(() => herald.close());
    const handler = heraldFetchHandler(herald, { prefix: '/herald' });
    const app = new Hono();
    app.get('/hello', (c) => c.text('app'));
    app.all('/herald/*', (c) => handler(c.req.raw));
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const base = `${origin}/herald`;
    assert.equal(await (await fetch(`${origin}/hello`)).text(), 'app');
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.deepEqual(await roundTrip(base, 'sse', 'hono.sse'), { via: 'sse' });
    assert.deepEqual(await roundTrip(base, 'poll', 'hono.poll'), { via: 'poll' });
    // The server API's errors come through as the hub wrote them.
    const refused = await fetch(`${base}/api/publish`, { method: 'POST', body: '{}' });
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'unauthorized');
    // Without an upgrade, /ws says so.
    assert.equal((await fetch(`${base}/ws`)).status, 400);
    // A CORS preflight has no body (204).
    assert.equal((await fetch(`${base}/sse`, { method: 'OPTIONS', headers: { Origin: origin } })).status, 204);
  });
});
