/**
 * PROTOCOL.md section 8, guarantees 1 to 3, on every transport: order, gapless exactly-once resume
 * (through real connection drops while publications flow), `recovered: false` when a position is
 * gone, and "acknowledged means stored". Guarantee 4 is in slow-consumer.test.ts, 5 in malformed.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { api, publish, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { PollLoop, poll } from '../../../test/support/poll.ts';
import { ResumingWsSubscriber, range } from '../../../test/support/resume.ts';
import { RawSse, openEventSource, streamQuery } from '../../../test/support/sse.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

/** Publications per resume run; the last one is published after the cuts, as a end marker. */
const TOTAL = 300;
const CUTS = 5;

/**
 * Publishes TOTAL publications at a steady pace while cutting every proxied connection CUTS times
 * (each cut waits until the client is connected again, so every cut drops a live connection).
 */
async function publishWithCuts(
  t: TestContext,
  hub: TestHub,
  proxy: TcpProxy,
  channel: string,
  connected: () => boolean,
): Promise<number> {
  let cuts = 0;
  const cutting: Promise<void>[] = [];
  const every = Math.floor(TOTAL / (CUTS + 1));
  for (let i = 1; i <= TOTAL; i++) {
    const ack = await publish(hub, channel, { i });
    assert.equal(ack.offset, i);
    if (i % every === 0 && cutting.length < CUTS) {
      cutting.push(
        until(() => connected() && proxy.connections > 0, 'the client to be connected again', 20_000).then(() => {
          if (proxy.cutAll() > 0) cuts++;
        }),
      );
    }
    await sleep(i % 10 === 0 ? 30 : 2);
  }
  await Promise.all(cutting);
  t.diagnostic(`${TOTAL} publications, ${cuts} cuts of live connections`);
  return cuts;
}

describe('guarantee 1: order', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ commandRate: { perSecond: 10_000, burst: 10_000 } });
  });
  after(() => hub.close());

  it('delivers a channel in increasing offsets on every transport while several publishers race', async () => {
    const channel = 'g1:order';
    const alice = await token();
    const ws = await WsTestClient.connect(hub.wsUrl, alice);
    await ws.ok('subscribe', { channel });
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery([channel], { token: alice })}`);
    await until(() => sse.events.length >= 1, 'herald.connected');
    const start = await poll(hub.url, { channels: [channel], token: alice, timeout: 0 });
    const polling = new PollLoop(() => hub.url, { channels: [channel], token: alice, timeout: 5 }, start.body.cursor);
    const publishers = [await WsTestClient.connect(hub.wsUrl, alice), await WsTestClient.connect(hub.wsUrl, alice)];
    const perPublisher = 60;
    await Promise.all([
      ...publishers.map(async (p, n) => {
        const acks = [];
        for (let i = 0; i < perPublisher; i++) acks.push(p.ok('publish', { channel, data: { ws: n, i } }));
        await Promise.all(acks);
      }),
      ...[0, 1].map(async (n) => {
        for (let i = 0; i < perPublisher; i++) await publish(hub, channel, { http: n, i });
      }),
    ]);
    const total = 4 * perPublisher;
    await until(
      () =>
        ws.publications(channel).length === total &&
        sse.publications().length === total &&
        polling.publications.length >= total,
      'every subscriber to get every publication',
      20_000,
    );
    await polling.stop();
    assert.deepEqual(
      ws.publications(channel).map((p) => p.offset),
      range(1, total),
    );
    assert.deepEqual(
      sse.publications().map((p) => p.offset),
      range(1, total),
    );
    assert.deepEqual(
      polling.publications.map((p) => p.offset),
      range(1, total),
    );
    // Each publisher's own publications keep their order too.
    for (const n of [0, 1]) {
      const own = ws.publications(channel).filter((p) => p.data.ws === n);
      assert.deepEqual(
        own.map((p) => p.data.i),
        range(0, perPublisher - 1),
      );
    }
    ws.close();
    sse.close();
    for (const p of publishers) p.close();
  });
});

describe('guarantee 2: gapless exactly-once resume through repeated disconnects', () => {
  let hub: TestHub;
  let proxy: TcpProxy;
  let alice: string;
  before(async () => {
    hub = await startHub({ sseRetryMs: 50 });
    proxy = new TcpProxy(hub.port);
    await proxy.listen();
    alice = await token();
  });
  after(async () => {
    await proxy.close();
    await hub.close();
  });

  it('WebSocket: subscribe with since after every drop', async (t) => {
    const channel = 'g2:ws';
    const client = new ResumingWsSubscriber(() => `ws://127.0.0.1:${proxy.port}/ws`, alice, channel);
    await until(() => client.live, 'the first subscription');
    const cuts = await publishWithCuts(t, hub, proxy, channel, () => client.live);
    await until(() => client.last >= TOTAL, 'every publication', 20_000);
    // A marker after the last one: anything duplicated would have arrived before it.
    await publish(hub, channel, 'end');
    await until(() => client.last === TOTAL + 1, 'the end marker', 10_000);
    await client.stop();
    t.diagnostic(`connections: ${client.connects}, recovered answers: ${client.recovered.length}`);
    assert.equal(cuts, CUTS);
    assert.deepEqual(client.errors, []);
    assert.deepEqual(client.offsets, range(1, TOTAL + 1));
    assert.ok(client.recovered.length >= CUTS, 'every drop was followed by a resume');
    assert.ok(client.recovered.every((r) => r === true));
  });

  it('SSE: a real EventSource reconnecting by itself with Last-Event-ID', async (t) => {
    const channel = 'g2:sse';
    const source = openEventSource(`http://127.0.0.1:${proxy.port}/sse?${streamQuery([channel], { token: alice })}`);
    try {
      await until(() => source.control.some((c) => c.type === 'herald.connected'), 'herald.connected');
      const cuts = await publishWithCuts(t, hub, proxy, channel, () => source.source.readyState === source.source.OPEN);
      await until(() => (source.messages.at(-1)?.offset ?? 0) >= TOTAL, 'every publication', 20_000);
      await publish(hub, channel, 'end');
      await until(() => source.messages.at(-1)?.offset === TOTAL + 1, 'the end marker', 10_000);
      const connected = source.control.filter((c) => c.type === 'herald.connected');
      t.diagnostic(`EventSource opens: ${source.opens}, errors: ${source.errors}`);
      assert.equal(cuts, CUTS);
      assert.deepEqual(
        source.messages.map((m) => m.offset),
        range(1, TOTAL + 1),
      );
      assert.ok(connected.length >= CUTS + 1, 'the EventSource reconnected after every cut');
      for (const resumed of connected.slice(1)) assert.equal(resumed.data.channels[channel].recovered, true);
    } finally {
      source.source.close();
    }
  });

  it('long-polling: the cursor of the last answer, retried after every drop', async (t) => {
    const channel = 'g2:poll';
    const start = await poll(`http://127.0.0.1:${proxy.port}`, { channels: [channel], token: alice, timeout: 0 });
    const loop = new PollLoop(
      () => `http://127.0.0.1:${proxy.port}`,
      { channels: [channel], token: alice, timeout: 10 },
      start.body.cursor,
    );
    try {
      const cuts = await publishWithCuts(t, hub, proxy, channel, () => true);
      await until(() => (loop.publications.at(-1)?.offset ?? 0) >= TOTAL, 'every publication', 20_000);
      await publish(hub, channel, 'end');
      await until(() => loop.publications.at(-1)?.offset === TOTAL + 1, 'the end marker', 15_000);
      t.diagnostic(`poll answers: ${loop.answers.length}, failed requests: ${loop.failures}`);
      assert.equal(cuts, CUTS);
      assert.ok(loop.failures >= 1, 'some polls were cut');
      assert.deepEqual(
        loop.publications.map((p) => p.offset),
        range(1, TOTAL + 1),
      );
      for (const answer of loop.answers) assert.equal(answer.channels[channel].recovered, true);
    } finally {
      await loop.stop();
    }
  });
});

describe('guarantee 2: recovered: false when the position cannot be served', () => {
  let hub: TestHub;
  let alice: string;
  before(async () => {
    hub = await startHub({ historySize: 5 });
    alice = await token();
  });
  after(() => hub.close());

  /** Positions that cannot be served on a channel with 10 publications and a history of 5. */
  async function lostPositions(channel: string): Promise<{ trimmed: any; otherEpoch: any; top: any }> {
    let top = { offset: 0, epoch: '' };
    for (let i = 1; i <= 10; i++) top = await publish(hub, channel, i);
    return { trimmed: { offset: 2, epoch: top.epoch }, otherEpoch: { offset: 8, epoch: 'older-epoch' }, top };
  }

  it('WebSocket: recovered false, no publications, offset at the top, then live ones', async () => {
    const { trimmed, otherEpoch, top } = await lostPositions('g2f:ws');
    const client = await WsTestClient.connect(hub.wsUrl, alice);
    const kept = await client.ok('subscribe', { channel: 'g2f:ws', since: { offset: 5, epoch: top.epoch } });
    assert.equal(kept.recovered, true, 'offset 5 is the oldest servable position with 6..10 kept');
    await client.ok('unsubscribe', { channel: 'g2f:ws' });
    for (const since of [trimmed, otherEpoch, { offset: 11, epoch: top.epoch }]) {
      const answer = await client.ok('subscribe', { channel: 'g2f:ws', since });
      assert.deepEqual(answer, { offset: 10, epoch: top.epoch, recovered: false, publications: [] });
      await client.ok('unsubscribe', { channel: 'g2f:ws' });
    }
    await client.ok('subscribe', { channel: 'g2f:ws', since: trimmed });
    await publish(hub, 'g2f:ws', 'live');
    await until(() => client.publications('g2f:ws').length === 1, 'the live publication');
    assert.equal(client.publications('g2f:ws')[0].offset, 11);
    client.close();
  });

  it('SSE: herald.connected says recovered false and nothing is replayed', async () => {
    const { trimmed, otherEpoch, top } = await lostPositions('g2f:sse');
    for (const since of [trimmed, otherEpoch]) {
      const cursor = `h1,g2f:sse~${since.offset}~${since.epoch}`;
      const stream = await RawSse.open(`${hub.url}/sse?${streamQuery(['g2f:sse'], { token: alice })}`, {
        headers: { 'last-event-id': cursor },
      });
      await until(() => stream.events.length >= 1, 'herald.connected');
      const connected = stream.named('herald.connected')[0];
      assert.deepEqual(connected.channels['g2f:sse'], { offset: 10, epoch: top.epoch, recovered: false });
      await sleep(100);
      assert.equal(stream.publications().length, 0);
      stream.close();
    }
  });

  it('long-polling: answers at once with recovered false and no publications', async () => {
    const { trimmed, otherEpoch, top } = await lostPositions('g2f:poll');
    for (const since of [trimmed, otherEpoch]) {
      const answer = await poll(hub.url, {
        channels: ['g2f:poll'],
        token: alice,
        cursor: `h1,g2f:poll~${since.offset}~${since.epoch}`,
        timeout: 55,
        signal: AbortSignal.timeout(15_000),
      });
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body.publications, []);
      assert.deepEqual(answer.body.channels['g2f:poll'], { offset: top.offset, epoch: top.epoch, recovered: false });
      // The cursor it gives resumes from the top, gaplessly.
      await publish(hub, 'g2f:poll', 'next');
      const next = await poll(hub.url, {
        channels: ['g2f:poll'],
        token: alice,
        cursor: answer.body.cursor,
        timeout: 5,
      });
      assert.equal(next.body.channels['g2f:poll'].recovered, true);
      assert.equal(next.body.publications[0].offset, top.offset + 1);
      top.offset++;
    }
  });

  it('history API: recovered false for a trimmed position', async () => {
    const { trimmed } = await lostPositions('g2f:api');
    const answer = await api(
      hub,
      'GET',
      `/api/channels/g2f:api/history?since=${trimmed.offset}&epoch=${trimmed.epoch}`,
    );
    assert.equal(answer.body.recovered, false);
    assert.deepEqual(answer.body.publications, []);
  });

  it('recovered false once publications outlive the history TTL', async () => {
    const short = await startHub({ historyTtlSeconds: 1 });
    try {
      const first = await publish(short, 'g2f:ttl', 1);
      await publish(short, 'g2f:ttl', 2);
      const client = await WsTestClient.connect(short.wsUrl, alice);
      const fresh = await client.ok('subscribe', { channel: 'g2f:ttl', since: first });
      assert.equal(fresh.recovered, true);
      await client.ok('unsubscribe', { channel: 'g2f:ttl' });
      await sleep(2100);
      const stale = await client.ok('subscribe', { channel: 'g2f:ttl', since: first });
      assert.deepEqual(stale, { offset: 2, epoch: first.epoch, recovered: false, publications: [] });
      client.close();
    } finally {
      await short.close();
    }
  });

  it('recovered false after the stream is lost (a restarted hub has a new epoch)', async () => {
    const before = await startHub();
    const position = await publish(before, 'g2f:restart', 1);
    await before.close();
    const restarted = await startHub();
    try {
      const client = await WsTestClient.connect(restarted.wsUrl, alice);
      const answer = await client.ok('subscribe', { channel: 'g2f:restart', since: position });
      assert.equal(answer.recovered, false);
      assert.notEqual(answer.epoch, position.epoch);
      client.close();
    } finally {
      await restarted.close();
    }
  });
});

describe('guarantee 3: acknowledged means stored', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ commandRate: { perSecond: 10_000, burst: 10_000 } });
  });
  after(() => hub.close());

  it('every acknowledged offset is in history right after the acknowledgement (API and WebSocket)', async () => {
    const channel = 'g3:acks';
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    const reader = await WsTestClient.connect(hub.wsUrl, await token());
    const checks: Promise<void>[] = [];
    const check = (ack: { offset: number; epoch: string }, via: string): Promise<void> =>
      (async () => {
        const since = { offset: ack.offset - 1, epoch: ack.epoch };
        const overHttp = await api(
          hub,
          'GET',
          `/api/channels/${channel}/history?since=${since.offset}&epoch=${since.epoch}&limit=1`,
        );
        assert.equal(overHttp.body.recovered, true, via);
        assert.equal(overHttp.body.publications[0]?.offset, ack.offset, `${via}: offset ${ack.offset} not in history`);
        const overWs = await reader.ok('history', { channel, since, limit: 1 });
        assert.equal(overWs.publications[0]?.offset, ack.offset, via);
      })();
    const viaApi = (async () => {
      for (let i = 0; i < 40; i++) {
        const acks = await Promise.all([1, 2, 3].map(() => publish(hub, channel, i)));
        for (const ack of acks) checks.push(check(ack, 'API'));
      }
    })();
    const viaWs = (async () => {
      for (let i = 0; i < 40; i++) {
        const acks = await Promise.all([1, 2].map(() => client.ok('publish', { channel, data: i })));
        for (const ack of acks) checks.push(check(ack, 'WebSocket'));
      }
    })();
    await Promise.all([viaApi, viaWs]);
    await Promise.all(checks);
    assert.equal(checks.length, 200);
    const all = await api(hub, 'GET', `/api/channels/${channel}/history`);
    assert.deepEqual(
      all.body.publications.map((p: any) => p.offset),
      range(1, 200),
    );
    client.close();
    reader.close();
  });

  it('a subscriber resuming from just before an acknowledged offset recovers it', async () => {
    const channel = 'g3:resume';
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    for (let i = 0; i < 20; i++) {
      const ack = await publish(hub, channel, i);
      const answer = await client.ok('subscribe', { channel, since: { offset: ack.offset - 1, epoch: ack.epoch } });
      assert.equal(answer.recovered, true);
      assert.deepEqual(
        answer.publications.map((p: any) => p.offset),
        [ack.offset],
      );
      await client.ok('unsubscribe', { channel });
    }
    client.close();
  });
});
