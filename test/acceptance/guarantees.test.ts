/**
 * PROTOCOL.md section 8: order on every transport, `recovered: false` whenever a resume cannot
 * be gapless (epoch changed after a restart, position out of history) on every transport, a
 * slow client capped and disconnected with 4004 while others go on, and bad input answered
 * clearly without hurting the hub or other clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TcpProxy } from '../support/tcp-proxy.ts';
import {
  API_KEY,
  Herald,
  Sse,
  Ws,
  api,
  http,
  killAll,
  metric,
  metrics,
  mint,
  offsets,
  poll,
  publish,
  query,
  range,
  sleep,
  until,
  uniqueChannel,
  within,
} from './support.ts';

/** Default settings. */
let hub: Herald;
/** History of 5 per channel, 64 KiB of outgoing queue per client. */
let tight: Herald;
let token: string;
before(async () => {
  [hub, tight] = await Promise.all([
    Herald.start(),
    Herald.start({ HERALD_HISTORY_SIZE: '5', HERALD_MAX_QUEUE_BYTES: '65536' }),
  ]);
  token = await mint({ sub: 'gus', channels: ['*'], publish: ['*'] });
});
after(killAll);

describe('guarantee 1: order', () => {
  it('every transport receives a channel in increasing offset while many publishers race', async () => {
    const channel = uniqueChannel('order');
    const ws = await Ws.connect(hub.wsUrl, token);
    await ws.ok('subscribe', { channel });
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    let cursor = (await poll(hub, [channel], { token, timeout: '1' })).json.cursor;
    const polled: any[] = [];
    const total = 120;
    const deadline = Date.now() + 30_000;
    const poller = (async () => {
      for (let i = 0; i < 200 && polled.length < total && Date.now() < deadline; i++) {
        const answer = await poll(hub, [channel], { token, cursor, timeout: '5' });
        polled.push(...answer.json.publications);
        cursor = answer.json.cursor;
      }
    })();
    // Eight publishers at once, over the API and over WebSocket.
    const publisherWs = await Ws.connect(hub.wsUrl, token);
    await Promise.all(
      range(0, 7).map(async (p) => {
        for (let i = 0; i < total / 8; i++) {
          if (p % 2 === 0) await publish(hub, channel, { p, i });
          else await publisherWs.ok('publish', { channel, data: { p, i } });
        }
      }),
    );
    await ws.waitFor(() => ws.pubs(channel).length === total, 'every publication on WebSocket');
    await sse.waitFor(() => sse.pubs().length === total, 'every publication on SSE');
    await poller;
    assert.deepEqual(offsets(ws.pubs(channel)), range(1, total), 'WebSocket');
    assert.deepEqual(offsets(sse.pubs()), range(1, total), 'SSE');
    assert.deepEqual(offsets(polled), range(1, total), 'poll');
    ws.end();
    publisherWs.end();
    sse.close();
  });
});

describe('guarantee 2: a gap is never silent', () => {
  it('a long replay (600 missed) is complete on every transport, or says recovered: false', async () => {
    const channel = uniqueChannel('long');
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    const pollStart = (await poll(hub, [channel], { token, timeout: '1' })).json.cursor;
    const first = await publish(hub, channel, 1);
    await sse.waitFor(() => sse.pubEvents().length === 1, 'the first publication');
    const cursor = sse.pubEvents()[0]?.id as string;
    sse.close();
    let next = 1;
    await Promise.all(
      range(1, 8).map(async () => {
        while (next < 601) {
          next++;
          await publish(hub, channel, next);
        }
      }),
    );

    const ws = await Ws.connect(hub.wsUrl, token);
    const answer = await ws.ok('subscribe', { channel, since: { offset: 1, epoch: first.epoch } });
    if (answer.recovered)
      assert.deepEqual(offsets(answer.publications), range(2, 601), 'WebSocket: all 600 in the answer');
    else assert.deepEqual(answer.publications, []);

    const resumed = await Sse.open(`${hub.url}/sse?${query([channel], { token, lastEventId: cursor })}`);
    await resumed.waitFor(() => resumed.named('herald.connected').length === 1, 'herald.connected');
    if (resumed.named('herald.connected')[0].channels[channel].recovered) {
      await resumed.waitFor(() => resumed.pubs().length >= 600, 'the SSE replay');
      assert.deepEqual(offsets(resumed.pubs()), range(2, 601), 'SSE');
    }
    resumed.close();

    const polled: any[] = [];
    let pollCursor = pollStart;
    for (let i = 0; i < 100 && polled.length < 601; i++) {
      const page = await poll(hub, [channel], { token, cursor: pollCursor, timeout: '1' });
      if (page.json.channels[channel].recovered === false) break;
      if (page.json.publications.length === 0) break;
      polled.push(...page.json.publications);
      pollCursor = page.json.cursor;
    }
    assert.deepEqual(offsets(polled), range(1, 601), 'poll: a chain of answers gets all of them');
    ws.end();
  });

  it('a position older than HERALD_HISTORY_SIZE resumes with recovered: false on every transport', async () => {
    const channel = uniqueChannel('old');
    const sse = await Sse.open(`${tight.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    const pollStart = (await poll(tight, [channel], { token, timeout: '1' })).json.cursor;
    const first = await publish(tight, channel, 1);
    await sse.waitFor(() => sse.pubEvents().length === 1, 'the first publication');
    const sseCursor = sse.pubEvents()[0]?.id as string;
    sse.close();
    for (let i = 2; i <= 10; i++) await publish(tight, channel, i);

    const ws = await Ws.connect(tight.wsUrl, token);
    const answer = await ws.ok('subscribe', { channel, since: { offset: 1, epoch: first.epoch } });
    assert.equal(answer.recovered, false, 'WebSocket');
    assert.deepEqual(answer.publications, []);
    assert.equal(answer.offset, 10);

    const resumed = await Sse.open(`${tight.url}/sse?${query([channel], { token, lastEventId: sseCursor })}`);
    await resumed.waitFor(() => resumed.named('herald.connected').length === 1, 'herald.connected');
    assert.equal(resumed.named('herald.connected')[0].channels[channel].recovered, false, 'SSE');
    resumed.close();

    const polled = await poll(tight, [channel], { token, cursor: pollStart, timeout: '1' });
    assert.equal(polled.status, 200);
    assert.equal(polled.json.channels[channel].recovered, false, `poll: ${polled.text.slice(0, 300)}`);
    ws.end();
  });

  it('after a restart of a memory-broker hub (new epoch), every transport says recovered: false', async () => {
    const channel = uniqueChannel('restart');
    const before = await Herald.start();
    const sse = await Sse.open(`${before.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    const pollStart = (await poll(before, [channel], { token, timeout: '1' })).json.cursor;
    const ack = await publish(before, channel, 1);
    await sse.waitFor(() => sse.pubEvents().length === 1, 'the publication');
    const sseCursor = sse.pubEvents()[0]?.id as string;
    const pollCursor = (await poll(before, [channel], { token, cursor: pollStart, timeout: '1' })).json.cursor;
    sse.close();
    await before.kill();

    const afterwards = await Herald.start();
    const again = await publish(afterwards, channel, 'new');
    assert.notEqual(again.epoch, ack.epoch, 'the epoch changes when the memory broker restarts');
    const ws = await Ws.connect(afterwards.wsUrl, token);
    const answer = await ws.ok('subscribe', { channel, since: { offset: ack.offset, epoch: ack.epoch } });
    assert.equal(answer.recovered, false, 'WebSocket');
    assert.deepEqual(answer.publications, []);
    assert.equal(answer.epoch, again.epoch);

    const resumed = await Sse.open(`${afterwards.url}/sse?${query([channel], { token, lastEventId: sseCursor })}`);
    assert.equal(resumed.status, 200, `SSE with the old cursor: ${resumed.body}`);
    await resumed.waitFor(() => resumed.named('herald.connected').length === 1, 'herald.connected');
    assert.equal(resumed.named('herald.connected')[0].channels[channel].recovered, false, 'SSE');
    resumed.close();

    const polled = await poll(afterwards, [channel], { token, cursor: pollCursor, timeout: '1' });
    assert.equal(polled.status, 200, `poll with the old cursor: ${polled.text}`);
    assert.equal(polled.json.channels[channel].recovered, false, 'poll');

    const history = await api(
      afterwards,
      'GET',
      `/api/channels/${encodeURIComponent(channel)}/history?since=1&epoch=${encodeURIComponent(ack.epoch)}`,
    );
    assert.equal(history.json.recovered, false, 'history API');
    ws.end();
    await afterwards.kill();
  });
});

describe('guarantee 4: slow clients', () => {
  it('a client that stops reading is disconnected with 4004 while others receive everything', async (t) => {
    const channel = uniqueChannel('slow');
    const proxy = new TcpProxy(tight.port);
    await proxy.listen();
    const before = metric(await metrics(tight), 'herald_slow_consumer_disconnects_total');
    const slow = await Ws.connect(`ws://127.0.0.1:${proxy.port}/ws`, token);
    await slow.ok('subscribe', { channel });
    const healthy = await Ws.connect(tight.wsUrl, token);
    await healthy.ok('subscribe', { channel });
    proxy.stall('toClient');
    const data = 'z'.repeat(32 * 1024);
    let sent = 0;
    try {
      // Bounded: at most 800 x 32 KiB, stopping as soon as the hub reports the disconnect.
      for (let round = 0; round < 100; round++) {
        await Promise.all(range(1, 8).map(() => publish(tight, channel, data)));
        sent += 8;
        const now = metric(await metrics(tight), 'herald_slow_consumer_disconnects_total');
        if (now > before) break;
      }
      const after = metric(await metrics(tight), 'herald_slow_consumer_disconnects_total');
      t.diagnostic(JSON.stringify({ publishedBeforeDisconnect: sent, bytes: sent * data.length }));
      assert.ok(after > before, 'herald_slow_consumer_disconnects_total counts the slow client');
      proxy.flow('toClient');
      const close = await slow.closedWithin(15_000);
      assert.equal(close.code, 4004, `the slow client is closed with 4004, got ${close.code}`);
      const received = offsets(slow.pubs(channel));
      assert.deepEqual(received, range(1, received.length), 'what it got before the cut is a gapless prefix');
      await healthy.waitFor(
        () => healthy.pubs(channel).length === sent,
        'the healthy client to get everything',
        20_000,
      );
      assert.deepEqual(offsets(healthy.pubs(channel)), range(1, sent));
      assert.equal(healthy.close, undefined);
    } finally {
      healthy.end();
      slow.end();
      await proxy.close();
    }
  });
});

describe('guarantee 4: slow clients, continued', () => {
  it('ephemeral publications are dropped first: a stalled client fed only ephemeral ones is not disconnected', async (t) => {
    const channel = uniqueChannel('eph');
    const proxy = new TcpProxy(tight.port);
    await proxy.listen();
    const before = metric(await metrics(tight), 'herald_slow_consumer_disconnects_total');
    const slow = await Ws.connect(`ws://127.0.0.1:${proxy.port}/ws`, token);
    await slow.ok('subscribe', { channel });
    proxy.stall('toClient');
    const data = 'e'.repeat(32 * 1024);
    try {
      // The same volume that disconnected a client with stored publications, and twice more.
      for (let round = 0; round < 48; round++) {
        await Promise.all(
          range(1, 8).map(() => api(tight, 'POST', '/api/publish', { channel, data, ephemeral: true })),
        );
      }
      const after = metric(await metrics(tight), 'herald_slow_consumer_disconnects_total');
      proxy.flow('toClient');
      const stored = await publish(tight, channel, 'stored');
      await slow.waitFor(
        () => slow.pubs(channel).some((p) => p.offset === stored.offset),
        'the stored publication after the flood',
        20_000,
      );
      t.diagnostic(JSON.stringify({ ephemeralSent: 48 * 8, ephemeralReceived: slow.pubs(channel).length - 1 }));
      assert.equal(after, before, 'no slow-consumer disconnect');
      assert.equal(slow.close, undefined);
    } finally {
      slow.end();
      await proxy.close();
    }
  });

  it('an SSE client that stops reading is disconnected too, the hub counting it', async () => {
    const channel = uniqueChannel('slow-sse');
    const proxy = new TcpProxy(tight.port);
    await proxy.listen();
    const before = metric(await metrics(tight), 'herald_slow_consumer_disconnects_total');
    const sse = await Sse.open(`${proxy.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    proxy.stall('toClient');
    const data = 's'.repeat(32 * 1024);
    try {
      for (let round = 0; round < 100; round++) {
        await Promise.all(range(1, 8).map(() => publish(tight, channel, data)));
        if (metric(await metrics(tight), 'herald_slow_consumer_disconnects_total') > before) break;
      }
      assert.ok(metric(await metrics(tight), 'herald_slow_consumer_disconnects_total') > before, 'counted');
      proxy.flow('toClient');
      await within(sse.done, 15_000, undefined);
      assert.ok(sse.ended, 'the stream ends');
      assert.deepEqual(offsets(sse.pubs()), range(1, sse.pubs().length), 'what arrived is a gapless prefix');
    } finally {
      sse.close();
      await proxy.close();
    }
  });
});

describe('guarantee 5: bad input', () => {
  it('gets a clear error, never crashes the hub and never affects other clients', async () => {
    const channel = uniqueChannel('steady');
    const watcher = await Ws.connect(hub.wsUrl, token);
    await watcher.ok('subscribe', { channel });
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    let steady = 0;
    let stop = false;
    const publisher = (async () => {
      while (!stop && steady < 500) {
        await publish(hub, channel, ++steady);
        await sleep(10);
      }
    })();

    // What each bad frame must get: `error` (an error answer, or a disconnect push and a 4002 or
    // 1009 close) or, for odd but valid commands, `answer` (any answer to it).
    const frames: Array<[string, string | Buffer, 'error' | 'answer']> = [
      ['not JSON', '{oops', 'error'],
      ['a JSON array', '[1,2,3]', 'error'],
      ['a JSON number', '42', 'error'],
      ['JSON null', 'null', 'error'],
      ['a binary frame', Buffer.from([0, 1, 2, 255]), 'error'],
      ['id 0', '{"id":0,"method":"ping"}', 'error'],
      ['negative id', '{"id":-3,"method":"ping"}', 'error'],
      ['string id', '{"id":"7","method":"ping"}', 'error'],
      ['fractional id', '{"id":1.5,"method":"ping"}', 'error'],
      ['no id', '{"method":"ping"}', 'error'],
      ['no method', '{"id":7}', 'error'],
      ['params a string', '{"id":7,"method":"subscribe","params":"x"}', 'error'],
      ['params null', '{"id":7,"method":"subscribe","params":null}', 'error'],
      ['channel a number', '{"id":7,"method":"subscribe","params":{"channel":5}}', 'error'],
      [
        'a huge channel',
        JSON.stringify({ id: 7, method: 'subscribe', params: { channel: 'c'.repeat(10_000) } }),
        'error',
      ],
      [
        'since garbage',
        JSON.stringify({ id: 7, method: 'subscribe', params: { channel, since: { offset: 'x', epoch: 5 } } }),
        'error',
      ],
      ['history limit 1e12', JSON.stringify({ id: 7, method: 'history', params: { channel, limit: 1e12 } }), 'answer'],
      [
        '__proto__ data',
        `{"id":7,"method":"publish","params":{"channel":"${channel}x","data":{"__proto__":{"polluted":true}}}}`,
        'answer',
      ],
      ['deeply nested', `${'['.repeat(50_000)}${']'.repeat(50_000)}`, 'error'],
      ['unknown method', '{"id":7,"method":"explode"}', 'error'],
      ['refresh with garbage', '{"id":7,"method":"refresh","params":{"token":"x.y.z"}}', 'error'],
    ];
    const unclear: string[] = [];
    for (const [what, frame, expected] of frames) {
      const ws = await Ws.connect(hub.wsUrl, token);
      const seen = ws.frames.length;
      ws.socket.send(frame);
      const fresh = (): any[] => ws.frames.slice(seen);
      const told = (): boolean => fresh().some((f) => f.error !== undefined || f.push === 'disconnect');
      const answered = (): boolean => told() || fresh().some((f) => f.id === 7);
      await until(() => ws.close !== undefined || (expected === 'error' ? told() : answered()), what, 1_500).catch(
        () => undefined,
      );
      if (ws.close !== undefined) {
        assert.ok([4002, 1009].includes(ws.close.code), `${what}: closed with ${ws.close.code}`);
      } else if (!(expected === 'error' ? told() : answered())) {
        unclear.push(`${what} (got ${JSON.stringify(fresh()).slice(0, 120)})`);
      }
      ws.end();
    }

    const http400: Array<[string, () => Promise<number>]> = [
      ['publish broken JSON', async () => (await api(hub, 'POST', '/api/publish', '{"channel":')).status],
      [
        'publish 1 MiB body',
        async () =>
          (await api(hub, 'POST', '/api/publish', JSON.stringify({ channel, data: 'x'.repeat(1 << 20) }))).status,
      ],
      ['broken percent-encoding in history', async () => (await api(hub, 'GET', '/api/channels/%ZZ/history')).status],
      ['broken percent-encoding in SSE', async () => (await http(`${hub.url}/sse?channel=%ZZ&token=${token}`)).status],
      [
        'a cursor with junk',
        async () => (await poll(hub, [channel], { token, cursor: 'h1,~~~,x', timeout: '1' })).status,
      ],
      [
        'an empty bearer',
        async () => (await http(`${hub.url}/api/channels`, { headers: { authorization: 'Bearer ' } })).status,
      ],
      [
        'a thousand channels',
        async () =>
          (
            await http(
              `${hub.url}/poll?${query(
                range(1, 1000).map((i) => `many:${i}`),
                { token, timeout: '1' },
              )}`,
            )
          ).status,
      ],
    ];
    const statuses: Record<string, number> = {};
    for (const [what, run] of http400) statuses[what] = await run();
    for (const [what, status] of Object.entries(statuses)) {
      assert.ok(status < 500, `${what}: a clear refusal (4xx) or an answer, not ${status}`);
    }

    stop = true;
    await publisher;
    assert.equal((await http(`${hub.url}/healthz`)).status, 200, 'the hub is alive');
    assert.ok(hub.alive, 'the process did not exit');
    await watcher.waitFor(() => watcher.pubs(channel).length === steady, 'the watcher to get everything');
    await sse.waitFor(() => sse.pubs().length === steady, 'the SSE client to get everything');
    assert.deepEqual(offsets(watcher.pubs(channel)), range(1, steady));
    assert.deepEqual(offsets(sse.pubs()), range(1, steady));
    assert.equal(watcher.close, undefined);
    assert.equal(({} as any).polluted, undefined, 'no prototype pollution visible from outside');
    const polluted = await api(
      hub,
      'GET',
      `/api/channels/${encodeURIComponent(`${channel}x`)}/history`,
      undefined,
      API_KEY,
    );
    assert.equal(polluted.status, 200);
    const stored = polluted.json.publications[0]?.data;
    assert.ok(stored !== undefined && Object.hasOwn(stored, '__proto__'), `data kept as sent: ${polluted.text}`);
    assert.deepEqual(unclear, [], `inputs met with silence instead of a clear error: ${unclear.join(', ')}`);
    watcher.end();
    sse.close();
  });
});
