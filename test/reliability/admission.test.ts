/**
 * Admission control (packages/server/src/http/admission.ts) and the per-user and per-connection
 * limits: a per-address cap on open connections across WebSocket, SSE and poll, token-bucket
 * connection rates per address and for the whole hub (HTTP 429 `rate_limited` with Retry-After,
 * before any upgrade or stream), a per-user cap (WebSocket 4005, SSE/poll 429), and the
 * per-connection command rate (4005). Clients come from 127.0.0.x source addresses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../../packages/server/src/core/token-bucket.ts';
import { Admission, addressKey } from '../../packages/server/src/http/admission.ts';
import { OptionsError, resolveOptions } from '@herald/server';
import { loadConfig } from '../../apps/herald/src/config.ts';
import { API_KEY, JWT_SECRET, startHub, token, until, type TestHub } from '../support/hub.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { recordFigures } from './support/figures.ts';
import { httpGet, openWs } from './support/http-raw.ts';

const off = { perSecond: 0, burst: 0 };

describe('admission: unit', () => {
  it('token bucket: burst, refill, retry-after, on an injected clock', () => {
    const bucket = new TokenBucket({ perSecond: 2, burst: 3 }, 0);
    for (let i = 0; i < 3; i++) {
      assert.equal(bucket.available(0), true);
      bucket.take();
    }
    assert.equal(bucket.available(0), false);
    assert.equal(bucket.retryAfter(0), 1);
    assert.equal(bucket.available(499), false);
    assert.equal(bucket.available(500), true);
    bucket.take();
    assert.equal(bucket.full(10_000), true);
  });

  it('per-address cap, release once, and rates checked before anything is spent', () => {
    let now = 0;
    const a = new Admission({
      maxConnectionsPerIp: 2,
      connectionRatePerIp: { perSecond: 1, burst: 3 },
      connectionRate: { perSecond: 1, burst: 4 },
      now: () => now,
    });
    const v1 = a.admit('10.0.0.1');
    const v2 = a.admit('::ffff:10.0.0.1');
    assert.ok(v1.ok && v2.ok);
    const v3 = a.admit('10.0.0.1');
    assert.equal(v3.ok, false);
    assert.match(v3.ok ? '' : v3.reason, /at most 2 open connections/);
    v1.release();
    v1.release(); // idempotent
    assert.equal(a.open, 1);
    const v4 = a.admit('10.0.0.1'); // third token of the address's burst
    assert.ok(v4.ok);
    v4.release();
    const v5 = a.admit('10.0.0.1'); // address bucket empty; the global one must not be charged
    assert.equal(v5.ok, false);
    assert.equal(v5.ok ? 0 : v5.retryAfterSeconds, 1);
    const v6 = a.admit('10.0.0.2'); // fourth global token
    assert.ok(v6.ok);
    const v7 = a.admit('10.0.0.3');
    assert.equal(v7.ok, false, 'global bucket empty');
    now += 1000;
    assert.ok(a.admit('10.0.0.3').ok);
  });

  it('forgets idle addresses, and counts IPv6 per /64', () => {
    let now = 0;
    const a = new Admission({
      maxConnectionsPerIp: 1,
      connectionRatePerIp: { perSecond: 10, burst: 10 },
      connectionRate: off,
      now: () => now,
    });
    for (let i = 0; i < 1000; i++) assert.ok(a.admit(`10.1.${i >> 8}.${i & 255}`).ok);
    assert.equal(a.trackedAddresses, 1000);
    // Release nothing: these stay. A later sweep keeps open ones only.
    now += 20_000;
    a.admit('10.9.9.9');
    assert.equal(a.trackedAddresses, 1001);
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0db8:0001:0002::'), '2001:db8:1:2::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('::ffff:127.0.0.1'), '127.0.0.1');
    const b = new Admission({ maxConnectionsPerIp: 1, connectionRatePerIp: off, connectionRate: off });
    assert.ok(b.admit('2001:db8:1:2::a').ok);
    assert.equal(b.admit('2001:db8:1:2::b').ok, false, 'same /64');
    assert.ok(b.admit('2001:db8:1:3::a').ok, 'another /64');
  });

  it('is off by default, and options and environment are validated', () => {
    const a = new Admission({ maxConnectionsPerIp: 0, connectionRatePerIp: off, connectionRate: off });
    assert.equal(a.enabled, false);
    for (let i = 0; i < 10_000; i++) assert.ok(a.admit('10.0.0.1').ok);
    assert.equal(a.trackedAddresses, 0);
    const base = { apiKey: API_KEY, jwtSecret: JWT_SECRET };
    assert.throws(() => resolveOptions({ ...base, maxConnectionsPerIp: -1 }), OptionsError);
    assert.throws(() => resolveOptions({ ...base, connectionRate: { perSecond: 5, burst: 0 } }), /connectionRate/);
    assert.throws(
      () => resolveOptions({ ...base, connectionRatePerIp: { perSecond: -1, burst: 1 } }),
      /connectionRatePerIp/,
    );
    assert.throws(() => resolveOptions({ ...base, maxConnectionsPerUser: 1.5 }), /maxConnectionsPerUser/);
    const config = loadConfig(
      {
        HERALD_MAX_CONNECTIONS_PER_IP: '100',
        HERALD_CONNECTION_RATE_PER_IP: '5',
        HERALD_CONNECTION_RATE: '500:2000',
        HERALD_MAX_CONNECTIONS_PER_USER: '10',
      },
      undefined,
    );
    assert.deepEqual(config, {
      maxConnectionsPerIp: 100,
      connectionRatePerIp: { perSecond: 5, burst: 5 },
      connectionRate: { perSecond: 500, burst: 2000 },
      maxConnectionsPerUser: 10,
    });
    assert.throws(
      () => loadConfig({ HERALD_CONNECTION_RATE: 'fast' }, undefined),
      /HERALD_CONNECTION_RATE must be RATE or RATE:BURST/,
    );
  });
});

describe('admission: on the wire', () => {
  async function withHub<T>(options: Parameters<typeof startHub>[0], fn: (hub: TestHub) => Promise<T>): Promise<T> {
    const hub = await startHub(options);
    try {
      return await fn(hub);
    } finally {
      await hub.close();
    }
  }

  it('caps open connections per address across WebSocket, SSE and poll; 429 with Retry-After; released on close', async (t) => {
    await withHub({ maxConnectionsPerIp: 6, anonymousChannels: ['public:*'] }, async (hub) => {
      const ip = '127.0.0.31';
      const ws = await Promise.all(Array.from({ length: 3 }, () => openWs(hub.wsUrl, ip)));
      assert.ok(ws.every((w) => w.ok));
      const sse = await Promise.all(
        Array.from({ length: 2 }, () => httpGet(hub.port, '/sse?channel=public:a', { localAddress: ip })),
      );
      assert.deepEqual(
        sse.map((s) => s.status),
        [200, 200],
      );
      const poll = httpGet(hub.port, '/poll?channel=public:a&timeout=5', { localAddress: ip }); // the sixth, in flight
      await until(() => hub.server.hub.stats.connections.poll === 1, 'the poll to be waiting');
      const refusedWs = await openWs(hub.wsUrl, ip);
      const refusedSse = await httpGet(hub.port, '/sse?channel=public:a', { localAddress: ip });
      const refusedPoll = await httpGet(hub.port, '/poll?channel=public:a&timeout=0', { localAddress: ip });
      assert.equal(refusedWs.status, 429);
      assert.equal(refusedWs.retryAfter, '5');
      assert.equal(refusedSse.status, 429);
      assert.equal(JSON.parse(refusedSse.body).error.code, 'rate_limited');
      assert.equal(refusedSse.headers['retry-after'], '5');
      assert.equal(refusedPoll.status, 429);
      // Another address is not affected.
      const other = await openWs(hub.wsUrl, '127.0.0.32');
      assert.ok(other.ok);
      // Closing one frees one.
      ws[0]?.socket?.close();
      // The slot comes back when the hub's socket closes (after the close handshake): retry until then.
      let again = await openWs(hub.wsUrl, ip);
      for (let i = 0; i < 50 && !again.ok; i++) {
        await new Promise((r) => setTimeout(r, 100));
        again = await openWs(hub.wsUrl, ip);
      }
      assert.ok(again.ok, `after a close: ${again.status}`);
      recordFigures(t, 'admission-per-ip-cap', {
        cap: 6,
        refused: { websocket: refusedWs.status, sse: refusedSse.status, poll: refusedPoll.status },
      });
      for (const w of [...ws, other, again]) w.socket?.terminate();
      for (const s of sse) s.res.destroy();
      await poll;
    });
  });

  it('limits the connection rate per address and for the whole hub', async (t) => {
    await withHub(
      { connectionRatePerIp: { perSecond: 5, burst: 10 }, connectionRate: { perSecond: 20, burst: 25 } },
      async (hub) => {
        // Token buckets refill while the attempts are made: allow what the elapsed time refilled.
        const refill = (started: number, perSecond: number): number =>
          Math.ceil(((Date.now() - started) / 1000) * perSecond);
        const startedA = Date.now();
        const a = await Promise.all(Array.from({ length: 12 }, () => openWs(hub.wsUrl, '127.0.0.41')));
        const admittedA = a.filter((x) => x.ok).length;
        assert.ok(admittedA >= 10 && admittedA <= 10 + refill(startedA, 5), `the address burst: ${admittedA}`);
        assert.ok(a.filter((x) => !x.ok).every((x) => x.status === 429 && x.retryAfter === '1'));
        // Other addresses share the global bucket: what is left of its 25, then 429.
        const b = await Promise.all(Array.from({ length: 20 }, (_, i) => openWs(hub.wsUrl, `127.0.0.${50 + (i % 4)}`)));
        const admittedB = b.filter((x) => x.ok).length;
        const globalLeft = 25 - admittedA;
        assert.ok(
          admittedB >= globalLeft && admittedB <= globalLeft + refill(startedA, 20),
          `global burst: ${admittedB}`,
        );
        assert.ok(
          b.filter((x) => !x.ok).every((x) => x.status === 429),
          'refused with 429',
        );
        await new Promise((r) => setTimeout(r, 1100));
        const later = await openWs(hub.wsUrl, '127.0.0.41');
        assert.ok(later.ok, 'a token came back after a second');
        recordFigures(t, 'admission-rate', { perIp: '5/s burst 10', global: '20/s burst 25', admittedA, admittedB });
        for (const x of [...a, ...b, later]) x.socket?.terminate();
      },
    );
  });

  it('caps connections per user: WebSocket connect ends 4005, SSE and poll answer 429; anonymous clients are not counted', async (t) => {
    await withHub({ maxConnectionsPerUser: 2, anonymousChannels: ['public:*'] }, async (hub) => {
      const jwt = await token({ sub: 'carol', channels: ['*'] });
      const c1 = await WsTestClient.connect(hub.wsUrl, jwt);
      const sse = await httpGet(hub.port, `/sse?channel=a&token=${jwt}`);
      assert.equal(sse.status, 200);
      const c3 = new WsTestClient(hub.wsUrl);
      await c3.opened;
      const reply = c3.call('connect', { token: jwt }).catch(() => undefined);
      assert.equal(await c3.closed, 4005);
      await reply;
      assert.equal(c3.pushes.at(-1)?.push, 'disconnect');
      assert.equal(c3.pushes.at(-1)?.reconnect, true);
      const refusedSse = await httpGet(hub.port, `/sse?channel=a&token=${jwt}`);
      assert.equal(refusedSse.status, 429);
      const refusedPoll = await httpGet(hub.port, `/poll?channel=a&timeout=0&token=${jwt}`);
      assert.equal(refusedPoll.status, 429);
      // Another user, and anonymous clients, are not affected.
      const dave = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'dave' }));
      const anon = await Promise.all(Array.from({ length: 5 }, () => WsTestClient.connect(hub.wsUrl)));
      // One of carol's connections goes: she may connect again.
      c1.close();
      await until(() => hub.server.hub.userSessionCount('carol') === 1, 'carol to have one session');
      const c4 = await WsTestClient.connect(hub.wsUrl, jwt);
      recordFigures(t, 'admission-per-user', {
        cap: 2,
        websocket: 4005,
        sse: refusedSse.status,
        poll: refusedPoll.status,
      });
      for (const c of [dave, c4, ...anon]) c.close();
      sse.res.destroy();
    });
  });

  it('closes a connection that sends commands faster than its rate with 4005', async (t) => {
    // One token a second: the burst of 100 is all there is, however slowly a loaded machine lets
    // the hub read the 300 commands (at 50/s, a read spread over 40 ms refilled a second token).
    await withHub({ commandRate: { perSecond: 1, burst: 100 } }, async (hub) => {
      const client = await WsTestClient.connect(hub.wsUrl, await token());
      for (let i = 0; i < 300; i++) client.socket.send(JSON.stringify({ id: 100 + i, method: 'ping' }));
      assert.equal(await client.closed, 4005);
      const answered = [...client.replies.keys()].filter((id) => id >= 100).length;
      recordFigures(t, 'command-rate', { rate: '1/s burst 100', sent: 300, answeredBeforeClose: answered });
      assert.ok(answered <= 101, `answered ${answered}`);
      assert.equal(client.pushes.at(-1)?.code, 4005);
    });
  });
});
