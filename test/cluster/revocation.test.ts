/**
 * Token revocation across nodes, on Redis and on NATS (docs/protocol-extensions.md, "Revocation"):
 * two hub nodes in this process, each with its own broker connections, sharing one prefix.
 * A revocation made on one node ends the live connections of the other on every transport
 * (WebSocket, SSE, long-poll, Socket.IO) and is refused there; it survives a node restart; a node
 * cut off from its broker while a revocation was made catches up when it reconnects; concurrent
 * revocations of one user combine.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { HeraldServer, type HeraldOptions } from '@herald/server';
import { attachSocketIo } from '@herald/transport-socketio';
import { SioClient } from '../../packages/transport-socketio/test/support.ts';
import { API_KEY, JWT_SECRET, api, listening, token, until, type TestHub } from '../support/hub.ts';
import { deleteNatsNamespace } from '../support/nats.ts';
import { poll } from '../support/poll.ts';
import { REDIS_URL, deleteRedisPrefix, testPrefix } from '../support/redis.ts';
import { recordFigures } from '../reliability/support/figures.ts';
import { requireService } from '../support/services.ts';
import { RawSse, streamQuery } from '../support/sse.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { ACCEPTED, REFUSED, tryEverywhere } from '../support/token-check.ts';
import { WsTestClient } from '../support/ws-client.ts';

type Kind = 'redis' | 'nats';
const NATS_URL = 'nats://127.0.0.1:4222';
const now = (): number => Math.floor(Date.now() / 1000);

/** The close code of a client that the hub must close, within `ms`; fails instead of hanging. */
async function closedWithin(client: WsTestClient, ms = 15_000): Promise<number> {
  await until(() => client.closeCode !== undefined, 'the hub to close the connection', ms);
  return client.closeCode as number;
}

/** One hub node on the shared broker, with Socket.IO; `brokerUrl` may go through a proxy. */
async function startNode(kind: Kind, prefix: string, brokerUrl?: string): Promise<TestHub> {
  const history = { size: 100, ttlSeconds: 600 };
  const backend =
    kind === 'redis'
      ? await (
          await import('@herald/broker-redis')
        ).createRedisBackend({ url: brokerUrl ?? REDIS_URL, history, prefix })
      : await (await import('@herald/broker-nats')).createNatsBackend({ url: brokerUrl ?? NATS_URL, history, prefix });
  const options: HeraldOptions = { apiKey: API_KEY, jwtSecret: JWT_SECRET, ...backend };
  const server = new HeraldServer(options);
  attachSocketIo(server);
  return listening(server);
}

for (const kind of ['redis', 'nats'] as const) {
  describe(`revocation across nodes on ${kind}`, () => {
    const prefix = testPrefix().replace(/-/g, '_');
    const nodes: TestHub[] = [];
    const cleanups: Array<() => Promise<unknown>> = [];
    const node = async (url?: string): Promise<TestHub> => {
      const hub = await startNode(kind, prefix, url);
      nodes.push(hub);
      return hub;
    };
    after(async () => {
      for (const hub of nodes) await hub.close().catch(() => undefined);
      for (const cleanup of cleanups) await cleanup().catch(() => undefined);
      if (kind === 'redis') await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
      else await deleteNatsNamespace(NATS_URL, prefix).catch(() => undefined);
    });

    async function ready(t: TestContext): Promise<boolean> {
      return requireService(t, kind);
    }

    it("a revocation on one node ends the user's connections on the other, on every transport, and is refused there", async (t) => {
      if (!(await ready(t))) return;
      const [a, b] = [await node(), await node()];
      const old = await token({ sub: 'mallory', iat: now() - 60 });
      const ws = await WsTestClient.connect(b.wsUrl, old);
      await ws.ok('subscribe', { channel: 'c' });
      const sse = await RawSse.open(`${b.url}/sse?${streamQuery(['c'], { token: old })}`);
      await until(() => sse.events.length > 0, 'herald.connected');
      const sio = await SioClient.connect(b.url, 'websocket', { auth: { token: old }, reconnection: false });
      const waiting = poll(b.url, { channels: ['c'], token: old, timeout: 20 });
      await until(() => b.server.hub.stats.connections.poll === 1, 'the waiting poll');
      const bystander = await WsTestClient.connect(b.wsUrl, await token({ sub: 'bob' }));

      const started = performance.now();
      assert.equal((await api(a, 'POST', '/api/revoke', { user: 'mallory', before: now() - 30 })).status, 200);
      assert.equal(await closedWithin(ws), 4001);
      const propagationMs = performance.now() - started;
      assert.equal(ws.closeReason, 'token revoked');
      await sse.ended;
      assert.deepEqual(sse.named('herald.disconnect'), [{ code: 4001, reason: 'token revoked', reconnect: false }]);
      await until(() => sio.disconnects.length === 1, 'the Socket.IO disconnect');
      assert.deepEqual(sio.events('herald.disconnect')[0]?.[0], {
        code: 4001,
        reason: 'token revoked',
        reconnect: false,
      });
      assert.equal(sio.disconnects[0], 'io server disconnect');
      assert.equal((await waiting).status, 200);
      assert.equal(bystander.closeCode, undefined, 'another user is untouched');
      for (const hub of [a, b]) assert.deepEqual(await tryEverywhere(hub, old), REFUSED);
      assert.deepEqual(await tryEverywhere(b, await token({ sub: 'mallory' })), ACCEPTED, 'a token issued since');
      bystander.close();
      recordFigures(t, `revocation-${kind}`, { revokeToRemoteCloseMs: Math.round(propagationMs) });
    });

    it('a token revoked by jti on one node is refused on the other, and after the node restarts', async (t) => {
      if (!(await ready(t))) return;
      const [a, b] = [await node(), await node()];
      const leaked = await token({ sub: 'carol', jti: `leak-${kind}` });
      const live = await WsTestClient.connect(a.wsUrl, leaked);
      assert.equal((await api(b, 'POST', '/api/revoke', { jti: `leak-${kind}` })).status, 200);
      assert.equal(await closedWithin(live), 4001);
      assert.deepEqual(await tryEverywhere(a, leaked), REFUSED);
      // Restart: every node gone, then a new one with new broker connections. It reads the store.
      await a.close();
      await b.close();
      const c = await node();
      assert.ok(c.server.revocations.size >= 2, `entries loaded at start: ${c.server.revocations.size}`);
      assert.deepEqual(await tryEverywhere(c, leaked), REFUSED, 'the jti after a restart');
      assert.deepEqual(await tryEverywhere(c, await token({ sub: 'mallory', iat: now() - 60 })), REFUSED, 'the user');
      assert.deepEqual(await tryEverywhere(c, await token({ sub: 'carol', jti: 'other' })), ACCEPTED);
    });

    it('combines concurrent revocations of one user made on two nodes', async (t) => {
      if (!(await ready(t))) return;
      const [a, b] = [await node(), await node()];
      const t0 = now();
      const answers = await Promise.all([
        ...Array.from({ length: 5 }, (_, i) => api(a, 'POST', '/api/revoke', { user: 'erin', before: t0 - 50 + i })),
        ...Array.from({ length: 5 }, (_, i) => api(b, 'POST', '/api/revoke', { user: 'erin', before: t0 - 20 + i })),
      ]);
      for (const answer of answers) assert.equal(answer.status, 200);
      // The latest `before` won everywhere, whatever order the writes took.
      const c = await node();
      for (const hub of [a, b, c]) {
        assert.deepEqual(
          await tryEverywhere(hub, await token({ sub: 'erin', iat: t0 - 17 })),
          REFUSED,
          'before the last',
        );
        assert.deepEqual(await tryEverywhere(hub, await token({ sub: 'erin', iat: t0 - 15 })), ACCEPTED, 'after it');
      }
    });

    it('a node cut off from the broker while a user was revoked catches up when it reconnects', async (t) => {
      if (!(await ready(t))) return;
      const proxy = new TcpProxy(kind === 'redis' ? 6379 : 4222);
      await proxy.listen();
      cleanups.push(() => proxy.close());
      const a = await node();
      const cut = await node(`${kind}://127.0.0.1:${proxy.port}`);
      const old = await token({ sub: 'frank', iat: now() - 60 });
      const live = await WsTestClient.connect(cut.wsUrl, old);
      proxy.pause();
      proxy.cutAll();
      await until(() => !cut.server.hub.ready, 'the cut node to notice', 15_000);
      assert.equal((await api(a, 'POST', '/api/revoke', { user: 'frank' })).status, 200);
      assert.equal(live.closeCode, undefined, 'the cut node cannot know yet');
      proxy.retarget(kind === 'redis' ? 6379 : 4222);
      assert.equal(await closedWithin(live), 4001, 'ended once the node caught up');
      assert.equal(live.closeReason, 'token revoked');
      await until(() => cut.server.hub.ready, 'the cut node to be ready again', 15_000);
      assert.deepEqual(await tryEverywhere(cut, old), REFUSED);
    });
  });
}
