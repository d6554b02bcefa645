/**
 * `@herald/server-client` against a real hub on loopback: every endpoint with its types, the
 * hub's errors as `HeraldApiError` with registry code and status, and retries through a TCP proxy
 * that loses answers and refuses connections, so "a publish whose answer was lost is stored once"
 * is shown on real sockets. The retry decision itself is pure and tested case by case.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ERROR_CODES } from '@herald/protocol';
import { HeraldApiError, HeraldServerClient, retryDelay, type RetryEvent } from '../src/index.ts';
import { API_KEY, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

async function rejection(promise: Promise<unknown>): Promise<HeraldApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HeraldApiError, String(error));
    return error;
  }
  assert.fail('expected a rejection');
}

describe('server client: endpoints against a real hub', () => {
  let hub: TestHub;
  let herald: HeraldServerClient;
  before(async () => {
    hub = await startHub();
    herald = new HeraldServerClient({ url: hub.url, apiKey: API_KEY });
  });
  after(() => hub.close());

  it('publishes, reads history and positions, and publishes ephemerally', async () => {
    const first = await herald.publish({ channel: 'orders:1', data: { status: 'placed' }, event: 'status' });
    const second = await herald.publish({ channel: 'orders:1', data: { status: 'paid' } });
    assert.equal(second.offset, first.offset + 1);
    assert.equal(second.epoch, first.epoch);
    const ephemeral = await herald.publish({ channel: 'orders:1', data: 'typing', ephemeral: true });
    assert.deepEqual(ephemeral, {});
    const all = await herald.history('orders:1');
    assert.deepEqual(
      all.publications.map((p) => [p.offset, p.event, p.data]),
      [
        [1, 'status', { status: 'placed' }],
        [2, undefined, { status: 'paid' }],
      ],
    );
    assert.equal(all.offset, 2);
    const since = await herald.history('orders:1', { since: first });
    assert.equal(since.recovered, true);
    assert.deepEqual(
      since.publications.map((p) => p.offset),
      [2],
    );
    assert.equal((await herald.history('orders:1', { limit: 0 })).publications.length, 0);
    // A channel name that needs URL encoding.
    await herald.publish({ channel: 'a/b=c@d', data: 1 });
    assert.equal((await herald.history('a/b=c@d')).publications[0]?.channel, 'a/b=c@d');
  });

  it('lists presence and channels', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'ann', info: { name: 'Ann' } }));
    await client.ok('subscribe', { channel: 'room:1' });
    const presence = await herald.presence('room:1');
    assert.equal(presence.clients.length, 1);
    assert.equal(presence.clients[0]?.userId, 'ann');
    assert.deepEqual(presence.clients[0]?.info, { name: 'Ann' });
    const { channels } = await herald.channels();
    assert.deepEqual(
      channels.find((c) => c.channel === 'room:1'),
      { channel: 'room:1', subscribers: 1 },
    );
    client.close();
  });

  it('revokes a user (before fixed on this machine) and a token id, ending live connections', async () => {
    const client = await WsTestClient.connect(
      hub.wsUrl,
      await token({ sub: 'zed', iat: Math.floor(Date.now() / 1000) - 5 }),
    );
    const revoked = await herald.revoke({ user: 'zed' });
    assert.ok('user' in revoked && revoked.user === 'zed');
    assert.ok(revoked.before <= Date.now() / 1000 && revoked.before > Date.now() / 1000 - 5);
    await until(() => client.closeCode !== undefined, 'the close');
    assert.equal(client.closeCode, 4001);
    assert.deepEqual(await herald.revoke({ jti: 'abc', exp: 1_900_000_000 }), { jti: 'abc', expiresAt: 1_900_000_000 });
  });

  it('acts on live connections: subscribe, connections, info, presence stats, unsubscribe, history removal, disconnect', async () => {
    const ws = await WsTestClient.connect(hub.wsUrl, await token({ sub: 'olga' }));
    assert.deepEqual(await herald.subscribe({ user: 'olga', channel: 'desk:olga' }), { subscribed: 1 });
    await until(() => ws.pushes.some((p) => p.push === 'sub'), 'the sub push');
    const page = await herald.connections({ user: 'olga', limit: 10 });
    assert.equal(page.connections.length, 1);
    const [connection] = page.connections;
    assert.equal(connection?.transport, 'websocket');
    assert.deepEqual(connection?.channels, ['desk:olga']);
    assert.equal(page.next, undefined);
    const info = await herald.info();
    assert.equal(info.nodes.length, 1);
    assert.equal(info.nodes[0]?.node, info.node);
    assert.deepEqual(await herald.presenceStats('desk:olga'), { clients: 1, users: 1 });
    assert.deepEqual(await herald.unsubscribe({ client: connection?.clientId ?? '', channel: 'desk:olga' }), {
      unsubscribed: 1,
    });
    const before = await herald.publish({ channel: 'desk:olga', data: 1 });
    assert.deepEqual(await herald.removeHistory('desk:olga'), {});
    const after = await herald.history('desk:olga', { since: before });
    assert.equal(after.recovered, false);
    assert.deepEqual(await herald.disconnect({ user: 'olga', reconnect: false }), { disconnected: 1 });
    assert.equal(await ws.closed, 4008);
    const bad = await rejection(herald.disconnect({ user: 'olga', code: 1000 }));
    assert.equal(bad.code, 'bad_request');
  });

  it('sends extension fields beside the publish fields', async () => {
    const unregistered = await herald.publish({ channel: 'x:1', data: 1, extensions: { custom: { a: 1 } } });
    assert.equal(unregistered.offset, 1, 'fields no integration registered are ignored by the hub');
  });

  it("turns the hub's errors into HeraldApiError with the registry code and HTTP status, without retrying them", async () => {
    const retries: RetryEvent[] = [];
    const counted = new HeraldServerClient({ url: hub.url, apiKey: API_KEY, onRetry: (e) => retries.push(e) });
    const bad = await rejection(counted.publish({ channel: 'bad channel!', data: 1 }));
    assert.equal(bad.code, 'bad_channel');
    assert.equal(bad.status, ERROR_CODES.bad_channel);
    assert.equal(bad.attempts, 1);
    assert.match(bad.message, /channel name/);
    const big = await rejection(counted.publish({ channel: 'c', data: 'x'.repeat(70_000) }));
    assert.equal(big.code, 'too_large');
    assert.equal(big.status, 413);
    const wrongKey = new HeraldServerClient({ url: hub.url, apiKey: 'not-the-key' });
    const unauthorized = await rejection(wrongKey.channels());
    assert.deepEqual([unauthorized.code, unauthorized.status], ['unauthorized', 401]);
    const asClient = new HeraldServerClient({ url: hub.url, apiKey: await token() });
    const forbidden = await rejection(asClient.revoke({ user: 'x' }));
    assert.deepEqual([forbidden.code, forbidden.status], ['forbidden', 403]);
    const revoke = await rejection(counted.revoke({ user: 'x', before: Date.now() / 1000 + 3600 }));
    assert.equal(revoke.code, 'bad_request');
    const notFound = await rejection(counted.request({ method: 'GET', path: '/api/nothing', idempotent: true }));
    assert.deepEqual([notFound.code, notFound.status], ['not_found', 404]);
    assert.equal(retries.length, 0, 'none of these is worth a retry');
  });

  it('refuses a bad base URL or a missing key at construction', () => {
    assert.throws(() => new HeraldServerClient({ url: 'not a url', apiKey: 'k' }), /base URL/);
    assert.throws(() => new HeraldServerClient({ url: 'ftp://x', apiKey: 'k' }), /http/);
    assert.throws(() => new HeraldServerClient({ url: hub.url, apiKey: '' }), /apiKey/);
  });
});

describe('server client: retries over a real network', () => {
  let hub: TestHub;
  let proxy: TcpProxy;
  before(async () => {
    hub = await startHub();
    proxy = new TcpProxy(hub.port);
    await proxy.listen();
  });
  after(async () => {
    await proxy.close();
    await hub.close();
  });

  it('a publish whose answer was lost is retried with the same idempotency key and stored once', async () => {
    const retries: RetryEvent[] = [];
    const herald = new HeraldServerClient({
      url: proxy.url,
      apiKey: API_KEY,
      timeoutMs: 500,
      retry: { minDelayMs: 50 },
      onRetry: (e) => retries.push(e),
    });
    // The publish goes out on a fresh connection whose answers the proxy holds back: it reaches
    // the hub, is stored, and its answer never comes back.
    proxy.stallNextConnection('toClient');
    const position = await herald.publish({ channel: 'lost:1', data: { n: 1 } });
    assert.equal(retries.length, 1);
    assert.equal(retries[0]?.error.code, 'timeout');
    const key = (retries[0]?.endpoint.body as { idempotencyKey: string }).idempotencyKey;
    assert.match(key, /^[0-9a-f-]{36}$/);
    const history = await herald.history('lost:1');
    assert.equal(history.publications.length, 1, 'stored once');
    assert.equal(position.offset, 1, 'the retry got the first result');
    proxy.cutAll();
  });

  it("keeps a caller's idempotency key, also across calls", async () => {
    const herald = new HeraldServerClient({ url: hub.url, apiKey: API_KEY });
    const a = await herald.publish({ channel: 'keyed:1', data: 1, idempotencyKey: 'order-7-paid' });
    const b = await herald.publish({ channel: 'keyed:1', data: 1, idempotencyKey: 'order-7-paid' });
    assert.deepEqual(a, b);
    assert.equal((await herald.history('keyed:1')).publications.length, 1);
  });

  it('retries while the hub cannot be reached, and stops after the attempts it was given', async () => {
    const retries: RetryEvent[] = [];
    // fetch may itself retry a connection reset by the paused proxy; the attempt timeout bounds that.
    const herald = new HeraldServerClient({
      url: proxy.url,
      apiKey: API_KEY,
      timeoutMs: 300,
      retry: { attempts: 50, minDelayMs: 20, maxDelayMs: 100 },
      onRetry: (e) => retries.push(e),
    });
    proxy.pause();
    proxy.cutAll();
    const pending = herald.publish({ channel: 'away:1', data: 'while away' });
    pending.catch(() => undefined);
    await until(() => retries.length >= 2, 'two retries');
    proxy.retarget(hub.port);
    const position = await pending;
    assert.equal(position.offset, 1);
    assert.ok(retries.every((r) => r.error.code === 'network' || r.error.code === 'timeout'));

    proxy.pause();
    proxy.cutAll();
    const bounded = new HeraldServerClient({
      url: proxy.url,
      apiKey: API_KEY,
      timeoutMs: 300,
      retry: { attempts: 3, minDelayMs: 10 },
    });
    const error = await rejection(bounded.history('away:1'));
    assert.ok(error.code === 'network' || error.code === 'timeout', error.code);
    assert.equal(error.attempts, 3);
    proxy.retarget(hub.port);
  });

  it('never retries a call that is not idempotent, and stops when aborted', async () => {
    proxy.pause();
    proxy.cutAll();
    const herald = new HeraldServerClient({
      url: proxy.url,
      apiKey: API_KEY,
      timeoutMs: 300,
      retry: { attempts: 10, minDelayMs: 10 },
    });
    const once = await rejection(
      herald.request({ method: 'POST', path: '/api/publish', body: { channel: 'n:1', data: 1 }, idempotent: false }),
    );
    assert.equal(once.attempts, 1);
    const abort = new AbortController();
    const slow = new HeraldServerClient({ url: proxy.url, apiKey: API_KEY, retry: { attempts: 100, minDelayMs: 200 } });
    const pending = rejection(slow.channels({ signal: abort.signal }));
    await sleep(50);
    abort.abort();
    assert.equal((await pending).code, 'aborted');
    proxy.retarget(hub.port);
  });
});

describe('server client: the retry decision', () => {
  const network = new HeraldApiError('network', 'x');
  const status = (code: string, s: number, retryAfterSeconds?: number): HeraldApiError =>
    new HeraldApiError(code, 'x', { status: s, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
  const max = (): number => 0.999_999;

  it('retries only what a later attempt can get past', () => {
    for (const error of [
      network,
      new HeraldApiError('timeout', 'x'),
      status('rate_limited', 429),
      status('not_ready', 503),
      status('bad_answer', 502),
      status('bad_answer', 504),
    ]) {
      assert.notEqual(retryDelay(error, 1, 0, {}, max), undefined, `${error.code} ${error.status}`);
    }
    for (const error of [
      status('bad_request', 400),
      status('unauthorized', 401),
      status('forbidden', 403),
      status('not_found', 404),
      status('too_large', 413),
      status('internal', 500),
      new HeraldApiError('aborted', 'x'),
      status('bad_answer', 200),
    ]) {
      assert.equal(retryDelay(error, 1, 0, {}, max), undefined, `${error.code} ${error.status}`);
    }
  });

  it('backs off exponentially with jitter, bounded, obeys Retry-After up to the bound, and respects attempts and total time', () => {
    const o = { attempts: 10, minDelayMs: 100, maxDelayMs: 2000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((a) => retryDelay(network, a, 0, o, max)),
      [99, 199, 399, 799, 1599, 1999],
    );
    assert.equal(
      retryDelay(network, 3, 0, o, () => 0),
      0,
      'full jitter',
    );
    assert.equal(
      retryDelay(status('rate_limited', 429, 1), 1, 0, o, () => 0),
      1000,
    );
    assert.equal(
      retryDelay(status('rate_limited', 429, 60), 1, 0, o, () => 0),
      2000,
    );
    assert.equal(retryDelay(network, 10, 0, o, max), undefined, 'attempts used up');
    assert.equal(retryDelay(network, 1, 0, { attempts: 1 }, max), undefined, 'attempts: 1 never retries');
    assert.equal(retryDelay(network, 3, 4_900, { ...o, totalMs: 5_000 }, max), undefined, 'past the total time');
    assert.equal(retryDelay(network, 3, 4_000, { ...o, totalMs: 5_000 }, max), 399);
    assert.equal(retryDelay(network, 1_000, 0, { attempts: Number.POSITIVE_INFINITY, maxDelayMs: 5000 }, max), 4999);
  });
});
