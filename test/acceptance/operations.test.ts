/**
 * PROTOCOL.md section 1, starting the hub: configuration from the environment (generated
 * secrets, the default listen address), `/healthz`, `/readyz` (503 while the broker is away) and
 * the required `/metrics` names and labels.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { requireService } from '../support/services.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import {
  API_KEY,
  Herald,
  Sse,
  Ws,
  assertError,
  http,
  killAll,
  metric,
  metrics,
  mint,
  poll,
  publish,
  query,
  sleep,
  uniqueChannel,
  until,
} from './support.ts';

const TRANSPORTS = ['websocket', 'sse', 'poll', 'socketio'];

describe('section 1: health, readiness and metrics', () => {
  let hub: Herald;
  before(async () => {
    hub = await Herald.start();
  });
  after(killAll);

  it('GET /healthz answers 200 and GET /readyz answers 200 once the hub accepts connections', async () => {
    assert.equal((await http(`${hub.url}/healthz`)).status, 200);
    assert.equal((await http(`${hub.url}/readyz`)).status, 200);
  });

  it('GET /metrics serves Prometheus text with the required names and transport labels', async () => {
    const channel = uniqueChannel('metrics');
    const token = await mint({ channels: ['*'] });
    const response = await http(`${hub.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    for (const name of [
      'herald_connections',
      'herald_publications_total',
      'herald_deliveries_total',
      'herald_slow_consumer_disconnects_total',
      'herald_auth_failures_total',
    ]) {
      assert.match(response.text, new RegExp(`^${name}[{ ]`, 'm'), `${name} is served`);
    }
    const before = await metrics(hub);

    // One client of each protocol transport, then one publication they all receive.
    const ws = await Ws.connect(hub.wsUrl, token);
    await ws.ok('subscribe', { channel });
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    const first = await poll(hub, [channel], { token, timeout: '1' });
    const pending = poll(hub, [channel], { token, cursor: first.json.cursor, timeout: '20' });

    const during = await metrics(hub);
    assert.ok(
      metric(during, 'herald_connections', { transport: 'websocket' }) >= 1,
      'a websocket connection is counted',
    );
    assert.ok(metric(during, 'herald_connections', { transport: 'sse' }) >= 1, 'an SSE connection is counted');

    await sleep(100);
    await publish(hub, channel, { n: 1 });
    await ws.waitFor(() => ws.pubs(channel).length === 1, 'the websocket delivery');
    await sse.waitFor(() => sse.pubs().length === 1, 'the SSE delivery');
    assert.equal((await pending).json.publications.length, 1);

    const failed = await Sse.open(`${hub.url}/sse?${query([channel], { token: 'not-a-token' })}`);
    assert.equal(failed.status, 401);

    await until(async () => {
      const now = await metrics(hub);
      return (
        metric(now, 'herald_deliveries_total', { transport: 'poll' }) >
        metric(before, 'herald_deliveries_total', { transport: 'poll' })
      );
    }, 'the poll delivery to be counted');
    const afterwards = await metrics(hub);
    const grew = (name: string, labels: Record<string, string> = {}): boolean =>
      metric(afterwards, name, labels) > metric(before, name, labels);
    assert.ok(grew('herald_publications_total'), 'herald_publications_total counts the publication');
    assert.ok(grew('herald_deliveries_total', { transport: 'websocket' }), 'websocket deliveries are counted');
    assert.ok(grew('herald_deliveries_total', { transport: 'sse' }), 'SSE deliveries are counted');
    assert.ok(grew('herald_deliveries_total', { transport: 'poll' }), 'poll deliveries are counted');
    assert.ok(grew('herald_auth_failures_total'), 'the refused token is counted');

    for (const sample of afterwards.filter(
      (s) => s.name === 'herald_connections' || s.name === 'herald_deliveries_total',
    )) {
      assert.ok(
        TRANSPORTS.includes(sample.labels.transport ?? ''),
        `${sample.name} label ${JSON.stringify(sample.labels)}`,
      );
    }
    ws.end();
    sse.close();
    await until(async () => {
      const now = await metrics(hub);
      return (
        metric(now, 'herald_connections', { transport: 'websocket' }) ===
          metric(before, 'herald_connections', { transport: 'websocket' }) &&
        metric(now, 'herald_connections', { transport: 'sse' }) ===
          metric(before, 'herald_connections', { transport: 'sse' })
      );
    }, 'herald_connections to come back down when the clients leave');
  });
});

describe('section 1: configuration from the environment', () => {
  after(killAll);

  it('generates and prints an API key and a JWT secret when none is configured, and they work', async () => {
    const hub = await Herald.start({ HERALD_API_KEY: undefined, HERALD_JWT_SECRET: undefined, HOST: undefined });
    // Default HOST without credentials: 127.0.0.1 (the hub was reached there to be parsed).
    assert.equal(hub.host, '127.0.0.1');
    const words = [...new Set(hub.output.match(/[A-Za-z0-9_\-+/=.]{16,}/g) ?? [])].filter((w) => !w.includes('/'));
    let apiKey: string | undefined;
    for (const word of words) {
      const answer = await http(`${hub.url}/api/channels`, { headers: { authorization: `Bearer ${word}` } });
      if (answer.status === 200) apiKey = word;
    }
    assert.ok(apiKey !== undefined, `a printed word works as the API key; output:\n${hub.output}`);
    let secret: string | undefined;
    for (const word of words) {
      const token = await mint({ publish: ['*'] }, word);
      const answer = await http(`${hub.url}/api/publish`, {
        headers: { authorization: `Bearer ${token}` },
        body: { channel: 'generated', data: 1 },
      });
      if (answer.status === 200) secret = word;
    }
    assert.ok(secret !== undefined, `a printed word works as the JWT secret; output:\n${hub.output}`);
    await hub.kill();
  });

  it('listens on 0.0.0.0 by default once credentials are configured', async (t) => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
    if (external === undefined) return t.skip('no non-loopback IPv4 address on this machine');
    const hub = await Herald.start({ HOST: undefined });
    const answer = await http(`http://${external.address}:${hub.port}/healthz`);
    assert.equal(answer.status, 200, 'reachable on a non-loopback address');
    await hub.kill();
  });
});

describe('section 1: /readyz while the broker is not connected', () => {
  after(killAll);

  it('answers 503 (and the server API 503) while the Redis broker is away, 200 once it is back', async (t) => {
    if (!(await requireService(t, 'redis'))) return;
    const proxy = new TcpProxy(6379);
    await proxy.listen();
    const prefix = `acc_${randomBytes(5).toString('hex')}`;
    try {
      const hub = await Herald.start({ HERALD_BROKER: `redis://127.0.0.1:${proxy.port}?prefix=${prefix}` });
      await until(async () => (await http(`${hub.url}/readyz`)).status === 200, '/readyz 200 with the broker up');
      proxy.pause();
      proxy.cutAll();
      await until(
        async () => (await http(`${hub.url}/readyz`)).status === 503,
        '/readyz 503 with the broker away',
        20_000,
      );
      assert.equal((await http(`${hub.url}/healthz`)).status, 200, '/healthz stays 200: the process is alive');
      const refused = await http(`${hub.url}/api/publish`, {
        headers: { authorization: `Bearer ${API_KEY}` },
        body: { channel: 'ready:test', data: 1 },
      });
      assertError(refused, 503, 'publish without a broker');
      proxy.retarget(6379);
      await until(async () => (await http(`${hub.url}/readyz`)).status === 200, '/readyz 200 again', 30_000);
      assert.equal((await publish(hub, 'ready:test', 2)).offset >= 1, true);
      await hub.kill();
    } finally {
      await proxy.close();
      const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
      await redis.connect();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
