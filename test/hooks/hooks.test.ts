/**
 * Hooks that decide (issue 16; docs/protocol-extensions.md): every hook against a real backend
 * HTTP server (backend.ts), on every transport: WebSocket (`ws`), SSE (`eventsource`), long-poll
 * (fetch) and Socket.IO (`socket.io-client`); plus backends that are slow, down, or answer garbage,
 * which must give a retryable `hook_unavailable` and never a hung connection.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HeraldServer, OptionsError, type HooksOptions } from '@herald/server';
import { Herald } from '@herald/client';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { io, type Socket } from 'socket.io-client';
import { attachSocketIo } from '../../packages/transport-socketio/src/index.ts';
import { Herald as HeraldProcess, Ws, http, killAll } from '../acceptance/support.ts';
import { API_KEY, JWT_SECRET, token, until } from '../support/hub.ts';
import { HOOK_SECRET, startBackend, type Backend } from './backend.ts';

interface Hub {
  readonly server: HeraldServer;
  readonly url: string;
  readonly wsUrl: string;
}

async function startHub(hooks: (base: string) => HooksOptions, base: string): Promise<Hub> {
  const server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, hooks: hooks(base) });
  attachSocketIo(server);
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws` };
}

const allHooks =
  (circuitBreaker = { failures: 1000, cooldownMs: 1000 }) =>
  (base: string): HooksOptions => ({
    connect: { url: `${base}/connect` },
    subscribe: { url: `${base}/subscribe` },
    publish: { url: `${base}/publish` },
    refresh: { url: `${base}/refresh` },
    rpc: { url: `${base}/rpc` },
    secret: HOOK_SECRET,
    // Well under the slow backend's 3 s, and well over a first request on a loaded machine.
    timeoutMs: 1_500,
    circuitBreaker,
  });

/** A port nothing listens on: a backend that is down. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

const cookie = (user: string): Record<string, string> => ({ cookie: `session=${user}; other=1` });

let backend: Backend;
let hub: Hub;
let down: Hub;
const sockets: Socket[] = [];
const wss: Ws[] = [];
before(async () => {
  backend = await startBackend();
  hub = await startHub(allHooks(), backend.url);
  down = await startHub(allHooks({ failures: 3, cooldownMs: 60_000 }), `http://127.0.0.1:${await deadPort()}`);
});
after(async () => {
  for (const s of sockets) s.close();
  for (const w of wss) w.end();
  await hub.server.close();
  await down.server.close();
  await backend.close();
});

async function wsConnect(h: Hub, user: string, params: Record<string, unknown> = {}): Promise<{ ws: Ws; reply: any }> {
  const ws = await Ws.open(h.wsUrl, { headers: cookie(user) });
  wss.push(ws);
  return { ws, reply: await ws.call('connect', params) };
}

/** A socket.io-client connection with the cookie on its handshake; resolves connected or with the connect_error. */
function sio(
  h: Hub,
  user: string,
  transports: ('polling' | 'websocket')[] = ['websocket'],
): Promise<{ socket: Socket; error?: any }> {
  const socket = io(h.url, { transports, forceNew: true, reconnection: false, extraHeaders: cookie(user) });
  sockets.push(socket);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ socket }));
    socket.once('connect_error', (error: any) => resolve({ socket, error }));
  });
}

const emit = (socket: Socket, event: string, params: unknown): Promise<any> =>
  socket.timeout(5000).emitWithAck(event, params);

/** Opens an EventSource with the cookie; resolves with the herald.connected data or the error status. */
function sse(h: Hub, user: string, channels: string[]): Promise<{ es: EventSource; connected?: any; status?: number }> {
  const query = channels.map((c) => `channel=${encodeURIComponent(c)}`).join('&');
  const es = new EventSource(`${h.url}/sse?${query}`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as object), ...cookie(user) } }),
  });
  return new Promise((resolve) => {
    es.addEventListener('herald.connected', (e) => resolve({ es, connected: JSON.parse((e as MessageEvent).data) }));
    es.onerror = (e: any) => {
      es.close();
      resolve({ es, status: e.code });
    };
  });
}

const poll = (h: Hub, user: string, channels: string[]) =>
  http(`${h.url}/poll?${channels.map((c) => `channel=${encodeURIComponent(c)}`).join('&')}&timeout=1`, {
    headers: cookie(user),
  });

describe('connect: a session cookie and no JWT', () => {
  it('connects on WebSocket, SSE, long-poll and Socket.IO; the backend gets the signed contract body', async () => {
    const { reply } = await wsConnect(hub, 'alice');
    assert.equal(reply.result.userId, 'alice');
    const request = backend.requests.findLast((r) => r.hook === 'connect');
    assert.equal(request.transport, 'websocket');
    assert.equal(request.remoteAddress, '127.0.0.1');
    assert.equal(request.headers.cookie, 'session=alice; other=1');

    const s = await sse(hub, 'alice', ['room:1']);
    s.es.close();
    assert.ok(s.connected, `SSE connected (status ${s.status})`);
    assert.equal(backend.requests.findLast((r) => r.hook === 'connect').transport, 'sse');

    const p = await poll(hub, 'alice', ['room:1']);
    assert.equal(p.status, 200, p.text);
    assert.equal(backend.requests.findLast((r) => r.hook === 'connect').transport, 'poll');

    const { socket, error } = await sio(hub, 'alice');
    assert.equal(error, undefined);
    assert.ok(socket.connected);
    assert.equal(backend.requests.findLast((r) => r.hook === 'connect').transport, 'socketio');
  });

  it('refuses what the backend refuses, with its code, on every transport', async () => {
    const { ws, reply } = await wsConnect(hub, 'bad');
    assert.equal(reply.error.code, 'unauthorized');
    assert.equal((await ws.closed).code, 4001);
    assert.equal((await sse(hub, 'bad', ['room:1'])).status, 401);
    const p = await poll(hub, 'bad', ['room:1']);
    assert.equal(p.status, 401);
    assert.equal(p.json.error.message, 'no session');
    const { error } = await sio(hub, 'bad');
    assert.equal(error.data.code, 'unauthorized');
  });

  it('a JWT decides by itself: the connect hook is not called', async () => {
    const before = backend.requests.filter((r) => r.hook === 'connect').length;
    const { reply } = await wsConnect(hub, 'alice', { token: await token({ sub: 'jwt-user' }) });
    assert.equal(reply.result.userId, 'jwt-user');
    assert.equal(backend.requests.filter((r) => r.hook === 'connect').length, before);
  });

  for (const user of ['slow', 'garbage']) {
    it(`a ${user} backend: a retryable hook_unavailable on every transport, never a hung connection`, async () => {
      const { ws, reply } = await wsConnect(hub, user);
      assert.equal(reply.error.code, 'hook_unavailable');
      assert.equal((await ws.closed).code, 1013);
      assert.equal((await sse(hub, user, ['room:1'])).status, 503);
      const p = await poll(hub, user, ['room:1']);
      assert.equal(p.status, 503);
      assert.equal(p.json.error.code, 'hook_unavailable');
      assert.ok(p.headers.get('retry-after'));
      const { error } = await sio(hub, user);
      assert.equal(error.data.code, 'hook_unavailable');
    });
  }

  it('a backend that is down: hook_unavailable on every transport, then the circuit opens', async () => {
    const { ws, reply } = await wsConnect(down, 'alice');
    assert.equal(reply.error.code, 'hook_unavailable');
    assert.equal((await ws.closed).code, 1013);
    assert.equal((await sse(down, 'alice', ['room:1'])).status, 503);
    assert.equal((await poll(down, 'alice', ['room:1'])).status, 503);
    const { error } = await sio(down, 'alice');
    assert.equal(error.data.code, 'hook_unavailable');
    const metrics = await (await fetch(`${down.url}/metrics`)).text();
    assert.match(metrics, /herald_hook_errors_total\{hook="connect",kind="unreachable"\} 3/);
    assert.match(metrics, /herald_hook_errors_total\{hook="connect",kind="circuit_open"\} 1/);
    assert.match(metrics, /herald_hook_duration_seconds_count\{hook="connect"\} 4/);
  });
});

describe('subscribe: channels outside the patterns go to the hook', () => {
  it('allows with per-subscription info, refuses, or fails retryably on WebSocket', async () => {
    const { ws } = await wsConnect(hub, 'alice');
    const ok = await ws.call('subscribe', { channel: 'private:alice' });
    assert.equal(ok.error, undefined, JSON.stringify(ok.error));
    // The hook's info is how the subscriber appears in the channel's presence.
    const presence = await http(`${hub.url}/api/channels/private%3Aalice/presence`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    assert.deepEqual(presence.json.clients[0].info, { seat: 7 });
    assert.equal((await ws.call('subscribe', { channel: 'private:bob' })).error.code, 'forbidden');
    assert.equal((await ws.call('subscribe', { channel: 'slow:1' })).error.code, 'hook_unavailable');
    assert.equal((await ws.call('subscribe', { channel: 'garbage:1' })).error.code, 'hook_unavailable');
    const before = backend.requests.filter((r) => r.hook === 'subscribe').length;
    assert.equal((await ws.call('subscribe', { channel: 'room:1' })).error, undefined);
    assert.equal(
      backend.requests.filter((r) => r.hook === 'subscribe').length,
      before,
      'patterns grant without the hook',
    );
    const request = backend.requests.find((r) => r.hook === 'subscribe');
    assert.equal(request.user, 'alice');
    assert.equal(typeof request.clientId, 'string');
  });

  it('on SSE, long-poll and Socket.IO', async () => {
    const s = await sse(hub, 'alice', ['room:1', 'private:alice']);
    s.es.close();
    assert.ok(s.connected?.channels['private:alice']);
    assert.equal((await sse(hub, 'alice', ['private:bob'])).status, 403);
    assert.equal((await sse(hub, 'alice', ['slow:2'])).status, 503);
    assert.equal((await poll(hub, 'alice', ['private:alice'])).status, 200);
    assert.equal((await poll(hub, 'alice', ['private:bob'])).status, 403);
    assert.equal((await poll(hub, 'alice', ['garbage:2'])).status, 503);
    const { socket } = await sio(hub, 'alice');
    assert.equal((await emit(socket, 'subscribe', { channel: 'private:alice' })).ok, true);
    assert.equal((await emit(socket, 'subscribe', { channel: 'private:bob' })).error.code, 'forbidden');
    assert.equal((await emit(socket, 'subscribe', { channel: 'slow:3' })).error.code, 'hook_unavailable');
  });
});

describe('publish: the backend refuses or replaces data before it is stored', () => {
  async function lastStored(channel: string): Promise<unknown> {
    const h = await http(`${hub.url}/api/channels/${encodeURIComponent(channel)}/history`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    return h.json.publications.at(-1)?.data;
  }

  it('on WebSocket', async () => {
    const { ws } = await wsConnect(hub, 'alice');
    assert.equal((await ws.call('publish', { channel: 'room:w', data: { text: '  ' } })).error.code, 'bad_request');
    assert.equal(
      (await ws.call('publish', { channel: 'room:w', data: { text: 'x'.repeat(30) } })).error.code,
      'too_large',
    );
    assert.equal(
      (await ws.call('publish', { channel: 'room:slow', data: { text: 'hi' } })).error.code,
      'hook_unavailable',
    );
    assert.equal(
      (await ws.call('publish', { channel: 'room:garbage', data: { text: 'hi' } })).error.code,
      'hook_unavailable',
    );
    assert.equal((await ws.call('publish', { channel: 'other:1', data: { text: 'hi' } })).error.code, 'forbidden');
    await ws.ok('publish', { channel: 'room:w', data: { text: '  hello ' } });
    assert.deepEqual(await lastStored('room:w'), { text: 'hello', by: 'alice' });
    await ws.ok('publish', { channel: 'room:w', data: { text: 'keep', extra: 1 } });
    assert.deepEqual(await lastStored('room:w'), { text: 'keep', extra: 1 });
  });

  it('on Socket.IO, with an ack', async () => {
    const { socket } = await sio(hub, 'bob');
    assert.equal((await emit(socket, 'publish', { channel: 'room:s', data: { text: '' } })).error.code, 'bad_request');
    assert.equal((await emit(socket, 'publish', { channel: 'room:s', data: { text: ' yo ' } })).ok, true);
    assert.deepEqual(await lastStored('room:s'), { text: 'yo', by: 'bob' });
  });

  it('over HTTP: a client token, and a session cookie (SSE and long-poll clients)', async () => {
    const jwt = await token({ sub: 'carol', publish: ['room:*'] });
    const refused = await http(`${hub.url}/api/publish`, {
      body: { channel: 'room:h', data: { text: '' } },
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, 'bad_request');
    const ok = await http(`${hub.url}/api/publish`, {
      body: { channel: 'room:h', data: { text: 'jwt' } },
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(await lastStored('room:h'), { text: 'jwt', by: 'carol' });
    const viaCookie = await http(`${hub.url}/api/publish`, {
      body: { channel: 'room:h', data: { text: 'cookie' } },
      headers: cookie('dave'),
    });
    assert.equal(viaCookie.status, 200, viaCookie.text);
    assert.deepEqual(await lastStored('room:h'), { text: 'cookie', by: 'dave' });
    const slow = await http(`${hub.url}/api/publish`, {
      body: { channel: 'room:slow', data: { text: 'x' } },
      headers: cookie('dave'),
    });
    assert.equal(slow.status, 503);
    // The API key publishes as the backend itself: no hook.
    const server = await http(`${hub.url}/api/publish`, {
      body: { channel: 'room:h', data: { text: '' } },
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    assert.equal(server.status, 200);
  });
});

describe('rpc: client to backend', () => {
  it('on WebSocket: {"id","method":"rpc","params":{"method","data"}} answered {"id","result":{"data"}} or {"id","error"}', async () => {
    const { ws } = await wsConnect(hub, 'alice');
    const reply = await ws.call('rpc', { method: 'rooms', data: { page: 1 } });
    assert.deepEqual(reply.result, { data: { rooms: ['room:a', 'room:b'], for: 'alice', echo: { page: 1 } } });
    assert.equal((await ws.call('rpc', { method: 'nope' })).error.code, 'not_found');
    assert.equal((await ws.call('rpc', { method: 'slow' })).error.code, 'hook_unavailable');
    assert.equal((await ws.call('rpc', { method: 'garbage' })).error.code, 'hook_unavailable');
    assert.equal((await ws.call('rpc', {})).error.code, 'bad_request');
    const request = backend.requests.find((r) => r.hook === 'rpc');
    assert.equal(request.method, 'rooms');
    assert.equal(request.transport, 'websocket');
  });

  it('on Socket.IO with an ack, and over HTTP (POST /api/rpc) for SSE and long-poll clients', async () => {
    const { socket } = await sio(hub, 'bob', ['polling']);
    const ack = await emit(socket, 'rpc', { method: 'rooms' });
    assert.equal(ack.ok, true);
    assert.equal(ack.data.for, 'bob');
    assert.equal((await emit(socket, 'rpc', { method: 'slow' })).error.code, 'hook_unavailable');
    const viaHttp = await http(`${hub.url}/api/rpc`, { body: { method: 'rooms', data: 2 }, headers: cookie('erin') });
    assert.equal(viaHttp.status, 200, viaHttp.text);
    assert.deepEqual(viaHttp.json, { data: { rooms: ['room:a', 'room:b'], for: 'erin', echo: 2 } });
    assert.equal(backend.requests.findLast((r) => r.hook === 'rpc').transport, 'http');
    const jwt = await token({ sub: 'frank' });
    const withJwt = await http(`${hub.url}/api/rpc`, {
      body: { method: 'rooms' },
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.equal(withJwt.json.data.for, 'frank');
    assert.equal((await http(`${hub.url}/api/rpc`, { body: { method: 'x' }, headers: cookie('bad') })).status, 401);
    assert.equal((await http(`${down.url}/api/rpc`, { body: { method: 'x' }, headers: cookie('erin') })).status, 503);
  });
});

describe('refresh: the backend extends hook-authenticated connections', () => {
  it('a connection whose session expires in 2 s lives on, extended by the refresh hook (WebSocket and Socket.IO)', async () => {
    const { ws, reply } = await wsConnect(hub, 'short');
    assert.ok(reply.result.expiresIn <= 2);
    const { socket } = await sio(hub, 'short');
    await until(
      () => backend.requests.filter((r) => r.hook === 'refresh' && r.user === 'short').length >= 2,
      'refreshes',
      10_000,
    );
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(ws.close, undefined, 'still open past the first expiresAt');
    assert.ok(socket.connected);
    const request = backend.requests.find((r) => r.hook === 'refresh');
    assert.equal(typeof request.clientId, 'string');
    // A WebSocket client may ask for it too: `refresh` without a token.
    const refreshed = await ws.ok('refresh', {});
    assert.ok(refreshed.expiresIn > 50);
  });
});

describe('the SDK: client.rpc(method, data) with a cookie session', () => {
  for (const transport of ['websocket', 'sse', 'poll'] as const) {
    it(`over ${transport}`, async () => {
      const headers = cookie('gina');
      class CookieWebSocket extends WebSocket {
        constructor(url: string) {
          super(url, { headers });
        }
      }
      const client = new Herald(hub.url, {
        transports: [transport],
        WebSocket: CookieWebSocket as never,
        fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as object), ...headers } }),
      });
      try {
        client.subscribe('room:sdk');
        const answer = await client.rpc<{ for: string; echo: unknown }>('rooms', { x: 1 });
        assert.equal(answer.for, 'gina');
        assert.deepEqual(answer.echo, { x: 1 });
        await assert.rejects(client.rpc('nope'), (e: any) => e.code === 'not_found');
      } finally {
        client.close();
      }
    });
  }
});

describe('configuration', () => {
  after(killAll);

  it('herald serve takes the hooks from HERALD_HOOK_*_URL and HERALD_HOOK_SECRET', async () => {
    const served = await HeraldProcess.start({
      HERALD_HOOK_CONNECT_URL: `${backend.url}/connect`,
      HERALD_HOOK_RPC_URL: `${backend.url}/rpc`,
      HERALD_HOOK_SECRET: HOOK_SECRET,
      HERALD_HOOK_TIMEOUT_MS: '400',
    });
    const ws = await Ws.open(`ws://127.0.0.1:${served.port}/ws`, { headers: cookie('hana') });
    wss.push(ws);
    assert.equal((await ws.ok('connect', {})).userId, 'hana');
    assert.equal((await ws.ok('rpc', { method: 'rooms' })).data.for, 'hana');
    assert.equal((await ws.call('rpc', { method: 'slow' })).error.code, 'hook_unavailable');
  });

  it('refuses hook URLs without a secret, and bad hook options, naming the key', () => {
    const base = { apiKey: API_KEY, jwtSecret: JWT_SECRET };
    assert.throws(
      () => new HeraldServer({ ...base, hooks: { connect: { url: 'http://x.invalid/' } } }),
      (e: Error) => e instanceof OptionsError && e.message.includes('hooks.secret'),
    );
    assert.throws(
      () => new HeraldServer({ ...base, hooks: { rpc: { url: 'ftp://x' }, secret: 's' } }),
      /hooks\.rpc\.url/,
    );
    // An in-process hook needs no secret.
    new HeraldServer({ ...base, hooks: { connect: () => ({ user: 'a' }) } });
  });
});
