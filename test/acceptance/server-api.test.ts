/**
 * PROTOCOL.md section 4: the server API (API key, client JWT on /api/publish, the error shape and
 * statuses, publish answers, idempotency keys, history with limit/since/epoch, presence, channels).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  API_KEY,
  Herald,
  Sse,
  Ws,
  api,
  assertError,
  http,
  killAll,
  mint,
  offsets,
  publish,
  query,
  range,
  sleep,
  until,
  uniqueChannel,
} from './support.ts';

const MAX = 1024;
let hub: Herald;
let small: Herald;
let shortLived: Herald;
before(async () => {
  [hub, small, shortLived] = await Promise.all([
    Herald.start({ HERALD_MAX_MESSAGE_BYTES: String(MAX) }),
    Herald.start({ HERALD_HISTORY_SIZE: '3' }),
    Herald.start({ HERALD_HISTORY_TTL: '1' }),
  ]);
});
after(killAll);

const historyPath = (channel: string, params = ''): string =>
  `/api/channels/${encodeURIComponent(channel)}/history${params === '' ? '' : `?${params}`}`;

describe('section 4: credentials and errors', () => {
  it('answers 401 without credentials or with a wrong key, on every route', async () => {
    for (const [method, path, body] of [
      ['POST', '/api/publish', { channel: 'x', data: 1 }],
      ['GET', '/api/channels', undefined],
      ['GET', historyPath('x'), undefined],
      ['GET', '/api/channels/x/presence', undefined],
    ] as const) {
      assertError(await http(hub.url + path, { method, body }), 401, `${method} ${path} without credentials`);
      assertError(await api(hub, method, path, body, 'wrong-key-0123456789abcdef'), 401, `${method} ${path} wrong key`);
      assertError(
        await http(hub.url + path, { method, body, headers: { authorization: API_KEY } }),
        401,
        `${method} ${path} key without Bearer`,
      );
    }
  });

  it('accepts a client JWT on /api/publish, and (v1.1) on history and presence within its `channels` patterns', async () => {
    const mine = uniqueChannel('mine');
    const other = uniqueChannel('other');
    const token = await mint({ channels: [`${mine}*`], publish: ['*'] });
    assert.equal((await api(hub, 'POST', '/api/publish', { channel: mine, data: 1 }, token)).status, 200);
    const history = await api(hub, 'GET', historyPath(mine), undefined, token);
    assert.equal(history.status, 200, 'history of a channel within the token patterns');
    assert.deepEqual(offsets(history.json.publications), [1]);
    const presence = await api(hub, 'GET', `/api/channels/${encodeURIComponent(mine)}/presence`, undefined, token);
    assert.equal(presence.status, 200, 'presence of a channel within the token patterns');
    assert.deepEqual(presence.json.clients, []);
    for (const path of [historyPath(other), `/api/channels/${encodeURIComponent(other)}/presence`]) {
      assertError(await api(hub, 'GET', path, undefined, token), 403, `client JWT on ${path}, outside its patterns`);
    }
    // `publish` patterns give no read rights: only `channels` counts.
    const publisher = await mint({ publish: ['*'] });
    assertError(await api(hub, 'GET', historyPath(mine), undefined, publisher), 403, 'a token without `channels`');
    assertError(await api(hub, 'GET', '/api/channels', undefined, token), 403, '/api/channels stays server-only');
  });

  it('answers 404 with the error shape for unknown routes', async () => {
    for (const path of ['/api/nope', '/api/channels/x/nope', '/nope', '/api/publish/extra']) {
      assertError(await api(hub, 'GET', path), 404, path);
    }
  });

  it('answers 400 for bad input', async () => {
    const channel = uniqueChannel('bad');
    const bad: Array<[string, unknown]> = [
      ['body not JSON', '{"channel": '],
      ['a JSON array', '[1,2]'],
      ['no channel', { data: 1 }],
      ['channel not a string', { channel: 42, data: 1 }],
      ['no data', { channel }],
      ['event not a string', { channel, data: 1, event: 7 }],
      ['reserved event', { channel, data: 1, event: 'herald.x' }],
    ];
    for (const [what, body] of bad) assertError(await api(hub, 'POST', '/api/publish', body), 400, what);
    for (const params of ['limit=abc', 'limit=-1', 'since=abc&epoch=e', 'since=-5&epoch=e']) {
      assertError(await api(hub, 'GET', historyPath(channel, params)), 400, `history ${params}`);
    }
    assertError(await api(hub, 'GET', '/api/channels/%E0%A4%A/history'), 400, 'broken percent-encoding');
    const history = await api(hub, 'GET', historyPath(channel));
    assert.deepEqual(history.json.publications, [], 'nothing refused was stored');
  });

  it('answers 413 above HERALD_MAX_MESSAGE_BYTES of data as JSON text, and accepts exactly that much', async () => {
    const channel = uniqueChannel('size');
    const fits = 'x'.repeat(MAX - 2); // JSON text "xxx...": MAX bytes
    assert.equal(JSON.stringify(fits).length, MAX);
    const ok = await api(hub, 'POST', '/api/publish', { channel, data: fits });
    assert.equal(ok.status, 200, `data of exactly ${MAX} bytes: ${ok.text}`);
    assertError(await api(hub, 'POST', '/api/publish', { channel, data: `${fits}x` }), 413, 'one byte more');
    assertError(
      await api(hub, 'POST', '/api/publish', { channel, data: { big: 'y'.repeat(64 * 1024) } }),
      413,
      'far more',
    );
    const client = await mint({ publish: ['*'] });
    assertError(await api(hub, 'POST', '/api/publish', { channel, data: `${fits}x` }, client), 413, 'client JWT');
    assertError(
      await api(hub, 'POST', '/api/publish', `{"channel":"${channel}","data":"${'y'.repeat(1 << 20)}"}`),
      413,
      'a 1 MiB body',
    );
    const ws = await Ws.connect(hub.wsUrl, client);
    const reply = await ws.call('publish', { channel, data: `${fits}x` });
    assert.equal(typeof reply.error?.code, 'string', 'WebSocket publish above the limit is refused');
    assert.equal(ws.close, undefined, 'with an error answer (the frame is under the limit plus 16 KiB)');
    ws.end();
    const history = await api(hub, 'GET', historyPath(channel));
    assert.deepEqual(offsets(history.json.publications), [1], 'only the one that fits was stored');
  });
});

describe('section 4: POST /api/publish', () => {
  it('answers {offset, epoch} once stored (history has it at once), {} for ephemeral', async () => {
    const channel = uniqueChannel('stored');
    for (let i = 1; i <= 5; i++) {
      const ack = await publish(hub, channel, { i });
      assert.equal(ack.offset, i);
      const history = await api(hub, 'GET', historyPath(channel));
      assert.equal(history.json.publications.at(-1)?.offset, i, 'acknowledged means in history');
    }
    const ephemeral = await api(hub, 'POST', '/api/publish', { channel, data: 1, ephemeral: true });
    assert.equal(ephemeral.status, 200);
    assert.deepEqual(ephemeral.json, {});
  });

  it('applies the same idempotencyKey on the same channel once and answers repeats with the first result', async () => {
    const channel = uniqueChannel('idem');
    const other = uniqueChannel('idem');
    const first = await publish(hub, channel, { v: 1 }, { idempotencyKey: 'k-1' });
    const repeat = await publish(hub, channel, { v: 2 }, { idempotencyKey: 'k-1' });
    assert.deepEqual(repeat, first, 'a repeat answers the first result');
    const elsewhere = await publish(hub, other, { v: 3 }, { idempotencyKey: 'k-1' });
    assert.equal(elsewhere.offset, 1, 'the same key on another channel is another publication');
    const next = await publish(hub, channel, { v: 4 }, { idempotencyKey: 'k-2' });
    assert.equal(next.offset, first.offset + 1);

    // Concurrent repeats (a retry racing the original) are applied once too.
    const racing = await Promise.all(
      range(1, 8).map((n) => publish(hub, channel, { n }, { idempotencyKey: 'k-race' })),
    );
    assert.equal(new Set(racing.map((a) => `${a.offset}/${a.epoch}`)).size, 1, `one result: ${JSON.stringify(racing)}`);

    const history = await api(hub, 'GET', historyPath(channel));
    assert.deepEqual(
      history.json.publications.map((p: any) => p.data),
      [{ v: 1 }, { v: 4 }, history.json.publications[2]?.data],
    );
    assert.equal(history.json.publications.length, 3, 'k-1 once, k-2 once, k-race once');

    const token = await mint({ publish: ['*'] });
    const viaJwt = await api(hub, 'POST', '/api/publish', { channel, data: 'jwt', idempotencyKey: 'k-jwt' }, token);
    const viaJwtAgain = await api(
      hub,
      'POST',
      '/api/publish',
      { channel, data: 'jwt', idempotencyKey: 'k-jwt' },
      token,
    );
    assert.deepEqual(viaJwtAgain.json, viaJwt.json, 'client JWT publishes are idempotent too');
  });
});

describe('section 4: history', () => {
  it('answers publications oldest first with offset and epoch; limit, since and epoch select; recovered says if it could', async (t) => {
    const channel = `orders/${uniqueChannel('hist')}@x=1`;
    const acks = [];
    for (let i = 1; i <= 6; i++) acks.push(await publish(hub, channel, { i }));
    const epoch = acks[0]?.epoch as string;
    const all = await api(hub, 'GET', historyPath(channel));
    assert.equal(all.status, 200, `channel URL-encoded: ${all.text}`);
    assert.deepEqual(offsets(all.json.publications), range(1, 6), 'oldest first');
    assert.equal(all.json.offset, 6);
    assert.equal(all.json.epoch, epoch);

    const limited = await api(hub, 'GET', historyPath(channel, 'limit=2'));
    assert.equal(limited.json.publications.length, 2, 'limit=2 gives 2');
    // The contract does not say which two; reported for the record.
    t.diagnostic(JSON.stringify({ historyLimit2Gives: offsets(limited.json.publications) }));
    const [a, b] = offsets(limited.json.publications);
    assert.equal(b, (a as number) + 1, 'consecutive, oldest first');
    assert.equal(limited.json.offset, 6, 'offset is the channel latest whatever the limit');

    const since = await api(hub, 'GET', historyPath(channel, `since=2&epoch=${encodeURIComponent(epoch)}`));
    assert.deepEqual(offsets(since.json.publications), [3, 4, 5, 6], 'since=2 gives the later ones');
    assert.equal(since.json.recovered, true);
    const page = await api(hub, 'GET', historyPath(channel, `since=2&epoch=${encodeURIComponent(epoch)}&limit=2`));
    assert.deepEqual(offsets(page.json.publications), [3, 4], 'since + limit pages forward from since');
    const upToDate = await api(hub, 'GET', historyPath(channel, `since=6&epoch=${encodeURIComponent(epoch)}`));
    assert.deepEqual(upToDate.json.publications, []);
    assert.equal(upToDate.json.recovered, true, 'nothing missed is recovered');
    const otherEpoch = await api(hub, 'GET', historyPath(channel, 'since=2&epoch=not-the-epoch'));
    assert.equal(otherEpoch.status, 200);
    assert.equal(otherEpoch.json.recovered, false, 'another epoch cannot be recovered');
    assert.equal(otherEpoch.json.epoch, epoch);
  });

  it('keeps HERALD_HISTORY_SIZE publications per channel; a position before them is not recovered', async () => {
    const channel = uniqueChannel('size');
    let epoch = '';
    for (let i = 1; i <= 5; i++) epoch = (await publish(small, channel, i)).epoch;
    const all = await api(small, 'GET', historyPath(channel));
    assert.deepEqual(offsets(all.json.publications), [3, 4, 5]);
    assert.equal(all.json.offset, 5);
    const lost = await api(small, 'GET', historyPath(channel, `since=1&epoch=${encodeURIComponent(epoch)}`));
    assert.equal(lost.json.recovered, false, 'offset 2 is gone: not recovered');
    const kept = await api(small, 'GET', historyPath(channel, `since=2&epoch=${encodeURIComponent(epoch)}`));
    assert.equal(kept.json.recovered, true);
    assert.deepEqual(offsets(kept.json.publications), [3, 4, 5]);
  });

  it('keeps publications HERALD_HISTORY_TTL seconds; a position before expired ones is not recovered', async () => {
    const channel = uniqueChannel('ttl');
    let epoch = '';
    for (let i = 1; i <= 3; i++) epoch = (await publish(shortLived, channel, i)).epoch;
    await sleep(2_500);
    const history = await api(shortLived, 'GET', historyPath(channel));
    assert.deepEqual(history.json.publications, [], 'expired publications are gone');
    const token = await mint({ channels: ['*'] });
    const ws = await Ws.connect(shortLived.wsUrl, token);
    const answer = await ws.ok('subscribe', { channel, since: { offset: 1, epoch } });
    assert.equal(answer.recovered, false, '2 and 3 expired: the gap is not silent');
    assert.deepEqual(answer.publications, []);
    ws.end();
  });
});

describe('section 1 defaults seen through the API', () => {
  it('HERALD_HISTORY_SIZE defaults to 1000 publications per channel', async () => {
    const channel = uniqueChannel('thousand');
    let next = 0;
    await Promise.all(
      range(1, 10).map(async () => {
        while (next < 1001) {
          next++;
          await publish(hub, channel, next);
        }
      }),
    );
    const history = await api(hub, 'GET', historyPath(channel, 'limit=2000'));
    assert.equal(history.json.offset, 1001);
    assert.equal(history.json.publications.length, 1000, 'the oldest one is gone');
    assert.deepEqual(offsets(history.json.publications), range(2, 1001));
  });

  it('HERALD_MAX_MESSAGE_BYTES defaults to 65536', async () => {
    const channel = uniqueChannel('default-size');
    const fits = 'x'.repeat(65536 - 2);
    assert.equal((await api(small, 'POST', '/api/publish', { channel, data: fits })).status, 200);
    assertError(await api(small, 'POST', '/api/publish', { channel, data: `${fits}x` }), 413, '65537 bytes');
  });

  it('counts data size in bytes of its JSON text, not in characters', async () => {
    const channel = uniqueChannel('utf8');
    const wide = '\u00e9'.repeat(600); // 602 characters as JSON, 1202 bytes in UTF-8
    assert.ok(JSON.stringify(wide).length < MAX && Buffer.byteLength(JSON.stringify(wide)) > MAX);
    assertError(
      await api(hub, 'POST', '/api/publish', { channel, data: wide }),
      413,
      `${Buffer.byteLength(JSON.stringify(wide))} bytes`,
    );
  });
});

describe('section 4: 429', () => {
  it('answers 429 with the error shape when rate limited (admission limit of docs/configuration.md)', async () => {
    const limited = await Herald.start({ HERALD_CONNECTION_RATE_PER_IP: '1:1' });
    const token = await mint({ channels: ['*'] });
    const statuses: number[] = [];
    let refusal: Awaited<ReturnType<typeof http>> | undefined;
    for (let i = 0; i < 5 && refusal === undefined; i++) {
      const answer = await http(`${limited.url}/poll?${query(['rate:1'], { token, timeout: '0' })}`);
      statuses.push(answer.status);
      if (answer.status === 429) refusal = answer;
    }
    assert.ok(refusal !== undefined, `a 429 among ${JSON.stringify(statuses)}`);
    assertError(refusal, 429, 'rate limited');
    await limited.kill();
  });
});

describe('section 4: presence and channels', () => {
  it('presence lists the subscribed clients; channels lists active channels with their subscriber counts', async () => {
    const channel = uniqueChannel('active');
    const token = await mint({ sub: 'carol', channels: ['*'] });
    const ws = await Ws.open(hub.wsUrl);
    const connected = await ws.call('connect', { token });
    await ws.ok('subscribe', { channel });
    const sse = await Sse.open(
      `${hub.url}/sse?${query([channel], { token: await mint({ sub: 'dave', channels: ['*'] }) })}`,
    );
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
    const clientIdOfSse = sse.named('herald.connected')[0].clientId;

    const presence = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/presence`);
    assert.equal(presence.status, 200);
    const clients = presence.json.clients.map((c: any) => `${c.userId}/${c.clientId}`).sort();
    assert.deepEqual(clients, [`carol/${connected.result.clientId}`, `dave/${clientIdOfSse}`].sort());

    const listed = await api(hub, 'GET', '/api/channels');
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.json.channels.find((c: any) => c.channel === channel),
      { channel, subscribers: 2 },
    );

    await ws.ok('unsubscribe', { channel });
    await until(async () => {
      const now = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/presence`);
      return now.json.clients.length === 1;
    }, 'carol to leave presence');
    sse.close();
    await until(async () => {
      const now = await api(hub, 'GET', '/api/channels');
      return !now.json.channels.some((c: any) => c.channel === channel && c.subscribers > 0);
    }, 'the channel to be inactive');
    ws.end();
  });
});
