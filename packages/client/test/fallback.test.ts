/**
 * Transport fallback through a proxy that refuses WebSocket upgrades, the periodic upgrade probe,
 * and publish retries that stay exactly-once when the acknowledgement is lost.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { api, publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import { assertExactlyOnceInOrder, closeClients, newClient, pubs, record, states, TRANSPORTS } from './helpers.ts';

let hub: TestHub;
const proxies: TcpProxy[] = [];
before(async () => {
  hub = await startHub();
});
after(async () => {
  for (const proxy of proxies) await proxy.close();
  await hub.close();
});
afterEach(closeClients);

async function proxy(options: { refuseUpgrades?: boolean } = {}): Promise<TcpProxy> {
  const p = new TcpProxy(hub.port, options);
  await p.listen();
  proxies.push(p);
  return p;
}

describe('fallback', () => {
  it('falls back to SSE when a proxy refuses WebSocket upgrades, and upgrades once WebSocket works', async () => {
    const blocked = await proxy({ refuseUpgrades: true });
    const client = newClient(blocked.url, { token: () => token(), upgradeProbeMs: 200 });
    const seen = states(client);
    const sub = client.subscribe('fallback:1');
    const log = record(sub);
    await until(() => client.transport === 'sse' && sub.state === 'subscribed', 'on SSE', 10_000);
    assert.deepEqual(
      seen.map((s) => `${s.state}:${'transport' in s ? s.transport : ''}`),
      ['connecting:websocket', 'connecting:sse', 'connected:sse'],
      'WebSocket refused, SSE at once: no backoff in between',
    );
    await publish(hub, sub.channel, 1);
    await until(() => pubs(log).length === 1, 'a publication over SSE', 10_000);
    // Probes keep failing while the proxy refuses; publications keep flowing over SSE.
    await until(() => blocked.connections >= 1, 'the SSE stream through the proxy');
    await publish(hub, sub.channel, 2);
    await until(() => pubs(log).length === 2, 'still on SSE', 10_000);
    assert.equal(client.transport, 'sse');

    blocked.refuseUpgrades = false;
    await until(() => client.transport === 'websocket', 'upgraded to WebSocket by the probe', 10_000);
    await publish(hub, sub.channel, 3);
    await until(() => pubs(log).length === 3, 'a publication over WebSocket', 10_000);
    assertExactlyOnceInOrder(log);
    assert.deepEqual(
      pubs(log).map((e) => e.kind === 'pub' && e.data),
      [1, 2, 3],
    );
    assert.ok(
      log.every((e) => e.kind !== 'recovered' || e.recovered),
      'the switch lost nothing',
    );
  });

  it('falls back to long-polling when SSE does not work either, and stays usable', async () => {
    const blocked = await proxy({ refuseUpgrades: true });
    // A deployment whose proxy buffers event streams looks like an SSE stream that never opens.
    const client = newClient(blocked.url, {
      token: () => token(),
      fetch: (input, init) =>
        String(input).includes('/sse?') ? new Promise<Response>(() => undefined) : fetch(input, init),
      connectTimeoutMs: 500,
      upgradeProbeMs: 0,
    });
    const sub = client.subscribe('fallback:2');
    const log = record(sub);
    await until(() => client.transport === 'poll' && sub.state === 'subscribed', 'on long-polling', 10_000);
    await client.publish(sub.channel, 'hello');
    await until(() => pubs(log).length === 1, 'a publication over long-polling', 10_000);
  });
});

describe('fallback when the first stream comes after connecting', () => {
  it('moves on to long-polling when the first SSE stream never starts, also after requests went through', async () => {
    const blocked = await proxy({ refuseUpgrades: true });
    // Connected on SSE without a stream (nothing subscribed yet): a request works over HTTP. The
    // first stream, opened by the first subscribe, is held by a buffering proxy and never starts.
    const client = newClient(blocked.url, {
      token: () => token(),
      fetch: (input, init) =>
        String(input).includes('/sse?') ? new Promise<Response>(() => undefined) : fetch(input, init),
      connectTimeoutMs: 500,
      upgradeProbeMs: 0,
    });
    const channel = 'fallback:late';
    await publish(hub, channel, 'earlier');
    const history = await client.history(channel);
    assert.equal(client.transport, 'sse', 'connected on SSE, which needed no stream yet');
    const sub = client.subscribe(channel, { since: { offset: history.offset, epoch: history.epoch } });
    const log = record(sub);
    await until(() => client.transport === 'poll' && sub.state === 'subscribed', 'on long-polling', 10_000);
    await publish(hub, channel, 'later');
    await until(() => pubs(log).length === 1, 'a publication over long-polling', 10_000);
    assertExactlyOnceInOrder(log);
  });
});

describe('publish retries are applied once', () => {
  for (const transport of TRANSPORTS) {
    it(`over ${transport}: the acknowledgement is lost, the retry answers the first result`, async () => {
      const through = await proxy();
      const channel = `idem:${transport}`;
      let cut = 0;
      // Cut the client's connections right after the hub stored the first publication, before it answers.
      const remove = hub.server.hub.addHooks({
        published: (record) => {
          if (record.channel === channel && cut++ === 0) through.cutAll();
        },
      });
      try {
        const client = newClient(through.url, { transports: [transport], token: () => token() });
        const sub = client.subscribe(channel);
        const log = record(sub);
        await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
        const answer = await client.publish(channel, { once: true });
        assert.equal(cut, 1, 'the hub stored it once, and the answer was lost');
        assert.equal(answer.offset, 1);
        const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
        assert.equal(history.body.publications.length, 1, 'stored once');
        await until(() => pubs(log).length === 1, 'delivered', 10_000);
        await client.publish(channel, { once: false });
        await until(() => pubs(log).length === 2, 'the next one', 10_000);
        assertExactlyOnceInOrder(log);
      } finally {
        remove();
      }
    });
  }
});

/** A proxy whose open connections can be frozen: nothing flows, nothing closes (a dead network path). */
async function freezingProxy(port: number) {
  const pairs: [Socket, Socket][] = [];
  const frozen: [Socket, Socket][] = [];
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) s.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    freeze: () => {
      for (const [client, upstream] of pairs.splice(0)) {
        frozen.push([client, upstream]);
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    close: async () => {
      for (const pair of [...pairs, ...frozen]) for (const s of pair) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('dead connections and client bugs', () => {
  it('notices a silent dead WebSocket by its ping commands, reconnects and resumes', async () => {
    const quick = await startHub({ pingIntervalSeconds: 1 });
    const path = await freezingProxy(quick.port);
    try {
      const client = newClient(path.url, { transports: ['websocket'], token: () => token() });
      const seen = states(client);
      const sub = client.subscribe('dead:1');
      const log = record(sub);
      await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      await publish(quick, sub.channel, 1);
      await until(() => pubs(log).length === 1, 'first', 10_000);
      path.freeze();
      await publish(quick, sub.channel, 2);
      await until(
        () => seen.some((s) => s.state === 'disconnected' && s.error.code === 'network'),
        'the dead connection noticed',
        15_000,
      );
      await until(() => pubs(log).length === 2, 'resumed on a new connection', 15_000);
      assertExactlyOnceInOrder(log);
    } finally {
      closeClients();
      await path.close();
      await quick.close();
    }
  });

  it('stops on 1009 (a frame past the limit is a client bug) instead of looping', async () => {
    const small = await startHub({ maxMessageBytes: 1000 });
    try {
      let calls = 0;
      const client = newClient(small.url, {
        transports: ['websocket'],
        token: () => {
          calls++;
          return token();
        },
      });
      await until(() => client.state.state === 'connected', 'connected', 10_000);
      await assert.rejects(client.publish('big:1', 'x'.repeat(40_000)), { code: 'too_large' });
      const state = client.state;
      assert.equal(state.state, 'closed');
      assert.equal(state.state === 'closed' && state.error?.closeCode, 1009);
      assert.equal(calls, 1, 'no reconnect');
    } finally {
      closeClients();
      await small.close();
    }
  });
});
