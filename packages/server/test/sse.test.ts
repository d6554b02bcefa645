import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeCursor } from '@herald/protocol';
import { publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { RawSse, openEventSource, streamQuery } from '../../../test/support/sse.ts';

describe('SSE stream', () => {
  let hub: TestHub;
  let alice: string;
  const open = (channels: string[], extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    RawSse.open(`${hub.url}/sse?${streamQuery(channels, { token: alice, ...extra })}`, { headers });

  before(async () => {
    hub = await startHub({ sseRetryMs: 1234, ssePingSeconds: 1, origins: ['https://app.example'] });
    alice = await token({ sub: 'alice' });
  });
  after(() => hub.close());

  it('answers 200 with the event-stream headers, and CORS headers for an allowed origin only', async () => {
    const plain = await open(['s:headers']);
    assert.equal(plain.status, 200);
    assert.match(plain.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(plain.headers.get('cache-control'), 'no-cache');
    assert.equal(plain.headers.get('x-accel-buffering'), 'no');
    assert.equal(plain.headers.get('access-control-allow-origin'), null);
    plain.close();
    const browser = await open(['s:headers'], {}, { origin: 'https://app.example' });
    assert.equal(browser.status, 200);
    assert.equal(browser.headers.get('access-control-allow-origin'), 'https://app.example');
    browser.close();
  });

  it('opens with retry and herald.connected carrying clientId and every channel position', async () => {
    await publish(hub, 's:open2', 'x');
    const stream = await open(['s:open1', 's:open2']);
    await until(() => stream.events.length >= 1, 'herald.connected');
    assert.deepEqual(stream.retries, [1234]);
    const [connected] = stream.events;
    assert.equal(connected?.event, 'herald.connected');
    const data = JSON.parse(connected?.data ?? '');
    assert.equal(typeof data.clientId, 'string');
    assert.deepEqual(Object.keys(data.channels).sort(), ['s:open1', 's:open2']);
    assert.equal(data.channels['s:open1'].offset, 0);
    assert.equal(data.channels['s:open2'].offset, 1);
    assert.equal(typeof data.channels['s:open2'].epoch, 'string');
    assert.equal('recovered' in data.channels['s:open1'], false);
    stream.close();
  });

  it('sends retry: in the first event block, so no client sees an event without data', async () => {
    // fetch-event-source reports a block with no data: line as an empty message (issue 14, item 6).
    const response = await fetch(`${hub.url}/sse?${streamQuery(['s:retry'])}`, {
      headers: { authorization: `Bearer ${await token()}` },
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const first = text.slice(0, text.indexOf('\n\n')).split('\n');
    assert.match(first[0] ?? '', /^retry: \d+$/);
    assert.ok(first.includes('event: herald.connected'), JSON.stringify(first));
    assert.ok(
      first.some((line) => line.startsWith('data: {')),
      JSON.stringify(first),
    );
  });

  it('sends each publication as one event: id cursor, event line only when it has an event, data', async () => {
    const stream = await open(['s:events']);
    await until(() => stream.events.length >= 1, 'herald.connected');
    const plain = await publish(hub, 's:events', { n: 1 });
    const named = await publish(hub, 's:events', { n: 2 }, { event: 'status_update' });
    await until(() => stream.publications().length === 2, 'two publications');
    const [first, second] = stream.events.slice(1);
    assert.equal(first?.event, undefined);
    assert.equal(second?.event, 'status_update');
    assert.deepEqual(JSON.parse(first?.data ?? ''), {
      channel: 's:events',
      offset: plain.offset,
      epoch: plain.epoch,
      data: { n: 1 },
      ts: JSON.parse(first?.data ?? '').ts,
    });
    assert.equal(JSON.parse(second?.data ?? '').event, 'status_update');
    assert.deepEqual(decodeCursor(first?.id ?? ''), new Map([['s:events', { offset: 1, epoch: plain.epoch }]]));
    assert.deepEqual(decodeCursor(second?.id ?? ''), new Map([['s:events', { offset: 2, epoch: named.epoch }]]));
    stream.close();
  });

  it('gives an EventSource publications without an event to onmessage, named ones to their listener', async () => {
    const source = openEventSource(`${hub.url}/sse?${streamQuery(['s:native'], { token: alice })}`, {
      events: ['status_update'],
    });
    try {
      await until(() => source.control.some((c) => c.type === 'herald.connected'), 'herald.connected');
      await publish(hub, 's:native', 'plain');
      await publish(hub, 's:native', 'named', { event: 'status_update' });
      await until(() => source.messages.length === 2, 'both publications');
      assert.deepEqual(
        source.messages.map((m) => m.data),
        ['plain', 'named'],
      );
      assert.equal(source.source.readyState, source.source.OPEN);
    } finally {
      source.source.close();
    }
  });

  it('sends ephemeral publications without an id line, and never stores them', async () => {
    const stream = await open(['s:ephemeral']);
    await until(() => stream.events.length >= 1, 'herald.connected');
    await publish(hub, 's:ephemeral', 'typing', { ephemeral: true });
    await publish(hub, 's:ephemeral', 'stored');
    await until(() => stream.publications().length === 2, 'both publications');
    const [ephemeral, stored] = stream.events.slice(1);
    assert.equal(ephemeral?.id, undefined);
    assert.equal('offset' in JSON.parse(ephemeral?.data ?? ''), false);
    assert.equal(typeof stored?.id, 'string');
    assert.equal(JSON.parse(stored?.data ?? '').offset, 1);
    stream.close();
  });

  it('sends `: ping` comments', async () => {
    const stream = await open(['s:ping']);
    await until(() => stream.comments.includes('ping'), 'a ping comment', 10_000);
    stream.close();
  });

  it("writes a busy turn's publications before the goodbye that follows them in the turn", async () => {
    const erin = await token({ sub: 'erin' });
    const stream = await RawSse.open(`${hub.url}/sse?${streamQuery(['s:busy'], { token: erin })}`);
    await until(() => stream.events.length >= 1, 'herald.connected');
    const publishTurn = (from: number): Promise<unknown>[] =>
      Array.from({ length: 30 }, (_, i) => hub.server.hub.publish({ channel: 's:busy', data: { i: from + i } }));
    // A turn that batches makes the next one hold the publications for its end (turn-batch.ts)...
    await Promise.all(publishTurn(0));
    // ...where more publications and the disconnect come: the goodbye is written through the response.
    const last = [...publishTurn(30), hub.server.hub.disconnectUser('erin', { code: 1000, reason: 'signed out' })];
    await Promise.all(last);
    await stream.ended;
    const order = stream.events.slice(1).map((e) => (e.event === undefined ? JSON.parse(e.data).data.i : e.event));
    const goodbye = order.indexOf('herald.disconnect');
    assert.equal(goodbye, order.length - 1, 'the goodbye comes last');
    const publications = order.filter((entry) => typeof entry === 'number');
    assert.deepEqual(
      publications,
      Array.from({ length: 60 }, (_, i) => i),
      'every publication, in order',
    );
  });

  it('sends herald.join and herald.leave with joinLeave=1 only', async () => {
    const watcher = await open(['s:jl'], { joinLeave: '1' });
    const quiet = await open(['s:jl']);
    await until(() => watcher.events.length >= 1 && quiet.events.length >= 1, 'both connected');
    const joiner = await RawSse.open(
      `${hub.url}/sse?${streamQuery(['s:jl'], { token: await token({ sub: 'joiner', info: { n: 1 } }) })}`,
    );
    await until(() => watcher.named('herald.join').some((j) => j.client.userId === 'joiner'), 'the join');
    const join = watcher.named('herald.join').find((j) => j.client.userId === 'joiner');
    assert.deepEqual(Object.keys(join).sort(), ['channel', 'client']);
    assert.equal(join.channel, 's:jl');
    assert.deepEqual(join.client.info, { n: 1 });
    joiner.close();
    await until(() => watcher.named('herald.leave').some((j) => j.client.userId === 'joiner'), 'the leave');
    await publish(hub, 's:jl', 'marker');
    await until(() => quiet.publications().length === 1, 'the marker');
    assert.equal(quiet.events.filter((e) => e.event === 'herald.join' || e.event === 'herald.leave').length, 0);
    watcher.close();
    quiet.close();
  });

  it('takes the token from ?token=, from the Authorization header (EventSource with a custom fetch)', async () => {
    const source = openEventSource(`${hub.url}/sse?${streamQuery(['s:auth'])}`, {
      headers: { authorization: `Bearer ${await token({ sub: 'header-user', channels: ['s:auth'] })}` },
    });
    try {
      await until(() => source.control.some((c) => c.type === 'herald.connected'), 'herald.connected');
      await publish(hub, 's:auth', 1);
      await until(() => source.messages.length === 1, 'the publication');
    } finally {
      source.source.close();
    }
  });

  it('resumes every channel of a multi-channel cursor from lastEventId, and marks each recovered', async () => {
    const stream = await open(['s:multi:a', 's:multi:b']);
    await until(() => stream.events.length >= 1, 'herald.connected');
    await publish(hub, 's:multi:a', 'a1');
    await publish(hub, 's:multi:b', 'b1');
    await until(() => stream.publications().length === 2, 'two publications');
    const cursor = stream.events.at(-1)?.id ?? '';
    stream.close();
    assert.equal(decodeCursor(cursor)?.size, 2);
    await publish(hub, 's:multi:a', 'a2');
    await publish(hub, 's:multi:b', 'b2');
    await publish(hub, 's:multi:a', 'a3');
    const resumed = await open(['s:multi:a', 's:multi:b', 's:multi:c'], { lastEventId: cursor });
    await until(() => resumed.publications().length === 3, 'the missed publications');
    const connected = resumed.named('herald.connected')[0];
    assert.equal(connected.channels['s:multi:a'].recovered, true);
    assert.equal(connected.channels['s:multi:b'].recovered, true);
    assert.equal(connected.channels['s:multi:c'].recovered, false);
    assert.deepEqual(
      resumed
        .publications()
        .map((p) => p.data)
        .sort(),
      ['a2', 'a3', 'b2'],
    );
    resumed.close();
  });

  it('prefers the Last-Event-ID header over the lastEventId query parameter', async () => {
    const a = await publish(hub, 's:header-wins', 1);
    await publish(hub, 's:header-wins', 2);
    await publish(hub, 's:header-wins', 3);
    const header = `h1,s:header-wins~2~${a.epoch}`;
    const query = `h1,s:header-wins~0~${a.epoch}`;
    const stream = await open(['s:header-wins'], { lastEventId: query }, { 'last-event-id': header });
    await until(() => stream.publications().length >= 1, 'the replay');
    await until(() => stream.events.length >= 2, 'the replay');
    assert.deepEqual(
      stream.publications().map((p) => p.offset),
      [3],
    );
    stream.close();
  });

  it('loses nothing when the connection drops right after herald.connected of a resume', async () => {
    const first = await publish(hub, 's:early-drop:a', 'a1');
    const other = await publish(hub, 's:early-drop:b', 'b1');
    for (let i = 2; i <= 4; i++) await publish(hub, 's:early-drop:a', `a${i}`);
    await publish(hub, 's:early-drop:b', 'b2');
    const cursor = `h1,s:early-drop:a~${first.offset}~${first.epoch},s:early-drop:b~${other.offset}~${other.epoch}`;
    const resumed = await open(['s:early-drop:a', 's:early-drop:b'], { lastEventId: cursor });
    await until(() => resumed.events.length >= 1, 'herald.connected');
    const connectedId = resumed.events[0]?.id;
    resumed.close();
    assert.equal(typeof connectedId, 'string');
    // A client that only got herald.connected resumes from its id and must still get every missed publication.
    const again = await open(['s:early-drop:a', 's:early-drop:b'], { lastEventId: connectedId as string });
    await until(() => again.publications().length >= 4, 'the missed publications');
    assert.deepEqual(
      again
        .publications()
        .map((p) => p.data)
        .sort(),
      ['a2', 'a3', 'a4', 'b2'],
    );
    // And every id along the replay is a cursor that resumes right after that event.
    const ids = again.events.slice(1).map((e) => decodeCursor(e.id ?? ''));
    const last = ids.at(-1);
    assert.equal(last?.get('s:early-drop:a')?.offset, 4);
    assert.equal(last?.get('s:early-drop:b')?.offset, 2);
    again.close();
  });
});

describe('SSE refusals', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ origins: ['https://app.example'] });
  });
  after(() => hub.close());

  const refused = async (query: string, headers: Record<string, string> = {}, method = 'GET') => {
    const response = await fetch(`${hub.url}/sse?${query}`, { method, headers });
    const body = await response.json();
    return { status: response.status, body, type: response.headers.get('content-type') };
  };

  it('answers JSON errors before any stream: 400, 401, 403, 405', async () => {
    const good = await token({ sub: 'alice', channels: ['ok:*'] });
    const cases: Array<[string, Record<string, string>, number, string, string?]> = [
      [streamQuery([], { token: good }), {}, 400, 'bad_channel'],
      [streamQuery(['bad channel'], { token: good }), {}, 400, 'bad_channel'],
      [streamQuery(['ok:1'], { token: good, lastEventId: 'not-a-cursor' }), {}, 400, 'bad_cursor'],
      [streamQuery(['ok:1']), {}, 401, 'unauthorized'],
      [streamQuery(['ok:1'], { token: 'a.b.c' }), {}, 401, 'unauthorized'],
      [streamQuery(['ok:1', 'secret:1'], { token: good }), {}, 403, 'forbidden'],
      [streamQuery(['ok:1'], { token: good }), { origin: 'https://evil.example' }, 403, 'origin_not_allowed'],
      [streamQuery(['ok:1'], { token: good }), {}, 405, 'method_not_allowed', 'POST'],
    ];
    for (const [query, headers, status, code, method] of cases) {
      const answer = await refused(query, headers, method);
      assert.equal(answer.status, status, `${query} ${JSON.stringify(headers)}`);
      assert.match(answer.type ?? '', /^application\/json/);
      assert.equal(answer.body.error.code, code);
      assert.equal(typeof answer.body.error.message, 'string');
      assert.ok(answer.body.error.message.length > 0);
    }
  });

  it('gives a refused origin no CORS headers, so its page cannot read even the error', async () => {
    const good = await token({ sub: 'alice', channels: ['ok:*'] });
    const response = await fetch(`${hub.url}/sse?${streamQuery(['ok:1'], { token: good })}`, {
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(response.status, 403);
    assert.equal(response.headers.get('access-control-allow-origin'), null);
    await response.arrayBuffer();
  });

  it('never delivers anything of a refused multi-channel request', async () => {
    const good = await token({ sub: 'alice', channels: ['ok:*'] });
    const stream = await RawSse.open(`${hub.url}/sse?${streamQuery(['ok:2', 'secret:2'], { token: good })}`);
    assert.equal(stream.status, 403);
    await publish(hub, 'ok:2', 'x');
    await stream.ended;
    assert.equal(stream.events.length, 0);
    const { channels } = (await (
      await fetch(`${hub.url}/api/channels`, { headers: { authorization: 'Bearer test-api-key-0123456789abcdef' } })
    ).json()) as { channels: Array<{ channel: string }> };
    assert.equal(channels.filter((c) => c.channel === 'ok:2' || c.channel === 'secret:2').length, 0);
  });
});
