/**
 * How the SDK reacts when the hub ends a connection for a reason of its own, and when the path to
 * the hub goes silent, against real hubs over real sockets (the reconnect rules themselves are
 * unit-tested in units.test.ts):
 *
 * - 4004, slow consumer: a TCP proxy stops reading the hub's side of the client's connection while
 *   a publisher floods the channel, until the hub's queue bound ends it; reading resumes at once.
 * - 4005, rate limited: the per-user connection cap, and more commands than the hub allows.
 * - A half-dead path: the proxy keeps the connection open but stops forwarding the hub's bytes; the
 *   SDK's watchdog (SSE) or ping commands (WebSocket) must notice.
 *
 * In every case the app sees each acknowledged publication exactly once, in order.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it, type TestContext } from 'node:test';
import type { ClientState } from '@herald/client';
import type { DisconnectInfo } from '@herald/protocol';
import type { HeraldOptions as HubOptions } from '@herald/server';
import { api, publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import { assertExactlyOnceInOrder, closeClients, FAST, newClient, pubs, record, states } from './helpers.ts';

type Disconnected = Extract<ClientState, { state: 'disconnected' }>;

const hubs: TestHub[] = [];
const proxies: TcpProxy[] = [];
afterEach(closeClients);
after(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
  for (const hub of hubs.splice(0)) await hub.close();
});

async function hubBehindProxy(options: Partial<HubOptions> = {}): Promise<{ hub: TestHub; proxy: TcpProxy }> {
  const hub = await startHub(options);
  hubs.push(hub);
  const proxy = new TcpProxy(hub.port);
  proxies.push(proxy);
  await proxy.listen();
  return { hub, proxy };
}

const disconnections = (seen: ClientState[]): Disconnected[] =>
  seen.filter((s): s is Disconnected => s.state === 'disconnected');

/** `seq` of every publication the app was given, in the order it was given them. */
const seqs = (log: ReturnType<typeof record>): number[] => pubs(log).map((e) => (e.kind === 'pub' ? e.data.seq : -1));

interface Acked {
  readonly seq: number;
  readonly offset: number;
  readonly epoch: string;
}

/**
 * Publishes `{seq, pad}` (about `padBytes` of JSON each) through the server API, one after the
 * other, until `enough()` holds; at most `max` publications and `deadlineMs`. Returns the
 * acknowledged ones, in offset order.
 */
async function flood(hub: TestHub, channel: string, enough: () => boolean, max: number, padBytes: number) {
  const pad = 'x'.repeat(padBytes);
  const acked: Acked[] = [];
  const deadline = Date.now() + 30_000;
  for (let seq = 0; seq < max && !enough() && Date.now() < deadline; seq++) {
    const { offset, epoch } = await publish(hub, channel, { seq, pad });
    acked.push({ seq, offset, epoch });
  }
  return acked;
}

const PAD_BYTES = 16 * 1024;

/**
 * A subscribed client behind a proxy that stops reading the hub's side of its connection, and a
 * publisher flooding the channel until the hub ends the client's session. At that moment (in the
 * hub's own hook, before anything else runs) the proxy reads again, so the client can still take
 * the goodbye queued behind what it did not read (the WebSocket close frame, the SSE
 * herald.disconnect) within the hub's 2 s grace.
 *
 * `holdOff`: from the verdict on the proxy refuses new connections, and cuts the open ones as soon
 * as the SDK reports the disconnection (an SSE client would otherwise reuse its kept-alive
 * connection at once), so the client stays away until the test calls `proxy.retarget`.
 */
async function slowConsumer(
  t: TestContext,
  transport: 'websocket' | 'sse',
  hubOptions: Partial<HubOptions>,
  holdOff = false,
) {
  // A small queue bound, so that the hub gives up soon after the kernel buffers are full.
  const { hub, proxy } = await hubBehindProxy({ maxQueueBytes: 64 * 1024, ...hubOptions });
  const channel = `slow:${transport}`;
  const client = newClient(proxy.url, { transports: [transport], token: () => token() });
  const seen = states(client);
  // Synchronous with the SDK's decision, so before its reconnect timer can fire.
  if (holdOff) client.on('state', (s) => s.state === 'disconnected' && proxy.cutAll());
  const sub = client.subscribe(channel);
  const log = record(sub);
  await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
  await publish(hub, channel, { seq: -1 });
  await until(() => pubs(log).length === 1, 'a first publication', 10_000);

  const ended: DisconnectInfo[] = [];
  let endedAt = 0;
  t.after(
    hub.server.hub.addHooks({
      sessionClosed: (_session, info) => {
        if (ended.push(info) > 1) return;
        endedAt = Date.now();
        if (holdOff) proxy.pause();
        proxy.flow('toClient');
      },
    }),
  );
  assert.ok(proxy.stall('toClient') >= 1, "the client's connection stalled");
  const start = Date.now();
  const acked = await flood(hub, channel, () => ended.length > 0, 900, PAD_BYTES);
  assert.deepEqual(ended[0], { code: 4004, reason: 'slow consumer', reconnect: true }, 'the hub ended it as slow');
  await until(() => disconnections(seen).length > 0, 'the SDK noticed', 10_000);
  const [lost] = disconnections(seen);
  assert.equal(lost?.error.closeCode, 4004, 'the SDK saw the close code');
  assert.equal(lost.error.code, 'disconnected');
  assert.ok(
    lost.retryInMs >= 0 && lost.retryInMs < FAST.minReconnectDelayMs!,
    `4004 reconnects promptly, below minReconnectDelayMs (retryInMs ${lost.retryInMs})`,
  );
  t.diagnostic(
    JSON.stringify({
      transport,
      publishedUntilVerdict: acked.length,
      approxBytes: acked.length * PAD_BYTES,
      floodMs: endedAt - start,
      goodbyeSeenMs: Date.now() - endedAt,
      retryInMs: lost.retryInMs,
    }),
  );
  return { hub, proxy, client, seen, sub, log, acked, lost };
}

describe('4004 slow consumer', () => {
  for (const transport of ['websocket', 'sse'] as const) {
    it(`over ${transport}: ended with 4004 while not reading, reconnects promptly and resumes gaplessly`, async (t) => {
      // The flood stays far below the history (1000 publications): the resume is certain to recover.
      const { seen, sub, log, acked, lost } = await slowConsumer(t, transport, { historySize: 1000 });
      const last = acked.at(-1)!;
      await until(() => sub.position?.offset === last.offset, 'the last acknowledged publication', 30_000);
      assert.equal(disconnections(seen).length, 1, 'disconnected once');
      const afterLost = seen.slice(seen.indexOf(lost) + 1).map((s) => s.state);
      assert.deepEqual(afterLost.slice(0, 2), ['connecting', 'connected'], 'then reconnected');
      assert.ok(!seen.some((s) => s.state === 'closed'), 'never gave up');
      assertExactlyOnceInOrder(log);
      assert.deepEqual(seqs(log), [-1, ...acked.map((a) => a.seq)], 'every acknowledged publication, once, in order');
      assert.deepEqual(
        log.filter((e) => e.kind === 'recovered').map((e) => e.kind === 'recovered' && e.recovered),
        [true],
        'one resume, recovered: the history still held what it missed',
      );
    });

    it(`over ${transport}: ended with 4004, and history overrun before it is back: recovered: false, then live`, async (t) => {
      // The client is held off from the verdict on, and 20 more publications go out meanwhile:
      // with a history of 10, what it missed is gone when it resumes.
      const { hub, proxy, seen, sub, log, acked } = await slowConsumer(t, transport, { historySize: 10 }, true);
      let overrun = acked.at(-1)!.offset;
      for (let seq = 0; seq < 20; seq++) overrun = (await publish(hub, sub.channel, { seq: `overrun-${seq}` })).offset;
      proxy.retarget(hub.port);
      await until(() => log.some((e) => e.kind === 'recovered'), 'the resume', 20_000);
      const live = await publish(hub, sub.channel, { seq: 'live' });
      await until(() => sub.position?.offset === live.offset, 'the live publication', 10_000);
      assert.ok(!seen.some((s) => s.state === 'closed'), 'never gave up');

      assertExactlyOnceInOrder(log);
      const resumed = log.findIndex((e) => e.kind === 'recovered');
      assert.deepEqual(log[resumed], { kind: 'recovered', recovered: false, epoch: acked[0]!.epoch }, 'told it lost');
      // Before: what the hub wrote before its verdict, a gapless prefix of the acknowledged ones.
      const before = seqs(log.slice(0, resumed));
      assert.deepEqual(before, [-1, ...acked.slice(0, before.length - 1).map((a) => a.seq)]);
      // After: from the hub's current position on, none of the overrun replayed.
      assert.deepEqual(
        pubs(log.slice(resumed + 1)).map((e) => e.kind === 'pub' && [e.offset, e.data.seq]),
        [[overrun + 1, 'live']],
      );
      assert.equal(live.offset, overrun + 1);
    });
  }
});

describe('4005 rate limited', () => {
  for (const transport of ['websocket', 'sse'] as const) {
    it(`over ${transport}: past the per-user connection cap, retries with a growing backoff and gets in once a slot frees`, async (t) => {
      const hub = await startHub({ maxConnectionsPerUser: 1 });
      hubs.push(hub);
      const channel = `cap:${transport}`;
      const options = { transports: [transport], token: () => token({ sub: 'carol' }) };
      const first = newClient(hub.url, options);
      const held = first.subscribe(channel);
      await until(() => held.state === 'subscribed', 'the first connection', 10_000);

      // The jitter at its top, so that each delay is its attempt's bound and the growth is exact.
      t.mock.method(Math, 'random', () => 0.999);
      const backoff = { minReconnectDelayMs: 10, maxReconnectDelayMs: 1000 };
      const second = newClient(hub.url, { ...options, ...backoff });
      const seen = states(second);
      const sub = second.subscribe(channel);
      const log = record(sub);
      await until(() => disconnections(seen).length >= 6, 'six refusals', 20_000);
      const refusals = disconnections(seen).slice(0, 6);
      for (const r of refusals) {
        assert.equal(r.error.code, 'rate_limited');
        assert.equal(r.error.closeCode, 4005);
        if (transport === 'sse') assert.equal(r.error.status, 429);
      }
      // min · 2^(attempt + 3), capped at max: 80, 160, 320, 640, 1000, 1000 (times the jitter).
      assert.deepEqual(
        refusals.map((r) => r.retryInMs),
        [80, 160, 320, 640, 1000, 1000].map((bound) => Math.floor(0.999 * bound)),
        'the backoff starts high and grows',
      );
      assert.ok(!seen.some((s) => s.state === 'connected' || s.state === 'closed'), 'neither in nor given up');
      t.mock.restoreAll();

      first.close();
      await until(() => sub.state === 'subscribed', 'in once the first connection closed', 10_000);
      const { offset } = await publish(hub, channel, { seq: 0 });
      await until(() => sub.position?.offset === offset, 'delivered', 10_000);
      assert.deepEqual(seqs(log), [0]);
    });
  }

  it('over websocket: publishing faster than the command rate ends with 4005, and every publish is applied once', async (t) => {
    // No refill to speak of: each connection may send exactly `burst` commands.
    const hub = await startHub({ commandRate: { perSecond: 0.001, burst: 40 } });
    hubs.push(hub);
    const channel = 'rate:publish';
    const client = newClient(hub.url, { transports: ['websocket'], token: () => token(), requestTimeoutMs: 60_000 });
    const seen = states(client);
    const sub = client.subscribe(channel);
    const log = record(sub);
    await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
    const start = Date.now();
    // 100 publish calls in one tick: more than one connection's burst.
    const answers = await Promise.all(Array.from({ length: 100 }, (_, seq) => client.publish(channel, { seq })));

    const limited = disconnections(seen);
    assert.ok(limited.length >= 1, 'the hub ended a connection for it');
    for (const d of limited) {
      assert.equal(d.error.code, 'rate_limited');
      assert.equal(d.error.closeCode, 4005);
      assert.equal(d.error.message, 'too many commands', "the hub's reason");
      // Each 4005 follows a connection that was established, so it is the first attempt: min · 2^3.
      assert.ok(d.retryInMs < FAST.minReconnectDelayMs! * 8, `backoff as at the fourth attempt (${d.retryInMs})`);
    }
    assert.ok(!seen.some((s) => s.state === 'closed'), 'never gave up');
    assert.deepEqual(
      answers.map((a) => a.offset).sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i + 1),
      'each publish acknowledged with its own offset',
    );
    const history = await api(hub, 'GET', `/api/channels/${channel}/history?limit=1000`);
    assert.deepEqual(
      history.body.publications.map((p: { data: { seq: number } }) => p.data.seq).sort((a: number, b: number) => a - b),
      Array.from({ length: 100 }, (_, i) => i),
      'stored exactly once each, retries included',
    );
    await until(() => sub.position?.offset === 100, 'every publication delivered', 20_000);
    assertExactlyOnceInOrder(log);
    assert.deepEqual(
      seqs(log),
      history.body.publications.map((p: { data: { seq: number } }) => p.data.seq),
      'delivered in stored order',
    );
    t.diagnostic(JSON.stringify({ disconnects4005: limited.length, ms: Date.now() - start }));
  });

  it('over websocket: more commands at once than the hub takes in flight (64) go through without 4005', async () => {
    // Default limits. 100 subscriptions and 60 presence calls in one tick stay within the burst of
    // 200 commands, but past the 64 a connection may have waiting: the SDK must not send them all at once.
    const hub = await startHub();
    hubs.push(hub);
    const client = newClient(hub.url, { transports: ['websocket'], token: () => token() });
    const seen = states(client);
    const subs = Array.from({ length: 100 }, (_, i) => client.subscribe(`many:${i}`));
    const presences = Promise.allSettled(Array.from({ length: 60 }, () => client.presence('many:0')));
    await until(() => subs.every((s) => s.state === 'subscribed'), 'all subscribed', 20_000);
    const answers = await presences;
    assert.ok(
      answers.every((a) => a.status === 'fulfilled'),
      'every presence call answered',
    );
    assert.deepEqual(disconnections(seen), [], 'never disconnected');
    const last = subs.at(-1)!;
    const log = record(last);
    await publish(hub, last.channel, { seq: 0 });
    await until(() => pubs(log).length === 1, 'live on the last one', 10_000);
    assert.deepEqual(seqs(log), [0]);
  });
});

describe('a silent path to the hub', () => {
  const cases = [
    // The hub comments every second and says so in herald.connected: the SDK gives up on a stream
    // after two silent intervals plus a margin (about 7 s) instead of the protocol's 45 s.
    { transport: 'sse', options: { ssePingSeconds: 1 } },
    // The SDK sends a ping command every pingInterval; no answer by the next tick is a dead path.
    { transport: 'websocket', options: { pingIntervalSeconds: 1 } },
  ] as const;
  for (const { transport, options } of cases) {
    it(`over ${transport}: notices the hub's bytes no longer arrive, reconnects and resumes gaplessly`, async (t) => {
      const { hub, proxy } = await hubBehindProxy(options);
      const channel = `silent:${transport}`;
      const client = newClient(proxy.url, { transports: [transport], token: () => token() });
      const seen = states(client);
      const sub = client.subscribe(channel);
      const log = record(sub);
      await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      await publish(hub, channel, { seq: 0 });
      await until(() => pubs(log).length === 1, 'a first publication', 10_000);

      // The connection stays open and the client's bytes still reach the hub: only silence tells.
      assert.ok(proxy.stall('toClient') >= 1, 'stalled');
      const stalledAt = Date.now();
      const acked: number[] = [];
      for (let seq = 1; seq <= 3; seq++) acked.push((await publish(hub, channel, { seq })).offset);
      await until(() => disconnections(seen).length > 0, 'the silence noticed', 20_000);
      const noticedMs = Date.now() - stalledAt;
      const [lost] = disconnections(seen);
      assert.equal(lost?.error.code, 'network');
      assert.equal(lost?.error.closeCode, 1006);
      await until(() => sub.position?.offset === acked.at(-1), 'resumed on a new connection', 20_000);
      assertExactlyOnceInOrder(log);
      assert.deepEqual(seqs(log), [0, 1, 2, 3]);
      assert.deepEqual(
        log.filter((e) => e.kind === 'recovered').map((e) => e.kind === 'recovered' && e.recovered),
        [true],
      );
      t.diagnostic(JSON.stringify({ transport, noticedMs }));
    });
  }
});
