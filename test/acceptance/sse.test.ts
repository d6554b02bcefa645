/**
 * PROTOCOL.md section 6, `GET /sse`: refusals before the stream, response headers, `retry:` and
 * `herald.connected`, one event per publication (`id:`, `event:` only when there is one),
 * cursors through `lastEventId` and `Last-Event-ID` (the header wins), resume through a real
 * `eventsource` reconnect, and join/leave control events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventSource } from 'eventsource';
import { TcpProxy } from '../support/tcp-proxy.ts';
import {
  Herald,
  Sse,
  Ws,
  api,
  assertError,
  killAll,
  mint,
  offsets,
  publish,
  query,
  range,
  sleep,
  uniqueChannel,
  until,
} from './support.ts';

let hub: Herald;
let token: string;
before(async () => {
  hub = await Herald.start({ HERALD_TOKEN_COOKIE: 'herald_token' });
  token = await mint({ sub: 'sam', channels: ['*'] });
});
after(killAll);

const sseUrl = (channels: string[], extra: Record<string, string> = {}): string =>
  `${hub.url}/sse?${query(channels, { token, ...extra })}`;

async function connected(sse: Sse): Promise<any> {
  await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');
  return sse.named('herald.connected')[0];
}

describe('section 6: refusals and headers', () => {
  it('refuses bad requests before the stream, as JSON: 400 channel, 403 channel; several channels refused whole', async () => {
    const limited = await mint({ channels: ['ok:*'] });
    const cases: Array<[string, number, string]> = [
      [`${hub.url}/sse?${query([], { token })}`, 400, 'no channel'],
      [`${hub.url}/sse?${query(['bad name'], { token })}`, 400, 'a bad channel'],
      [`${hub.url}/sse?${query(['ok:1', 'bad name'], { token })}`, 400, 'one bad channel among good ones'],
      [`${hub.url}/sse?${query(['no:1'], { token: limited })}`, 403, 'a forbidden channel'],
      [`${hub.url}/sse?${query(['ok:1', 'no:1', 'ok:2'], { token: limited })}`, 403, 'one forbidden among several'],
    ];
    for (const [url, status, what] of cases) {
      const sse = await Sse.open(url);
      assertError({ status: sse.status, headers: sse.headers, text: sse.body, json: sse.json }, status, what);
      assert.match(sse.headers.get('content-type') ?? '', /application\/json/, `${what}: JSON, not a stream`);
    }
    // Nothing of the refused request lives on: ok:1 has no subscriber.
    const presence = await api(hub, 'GET', `/api/channels/ok%3A1/presence`);
    assert.deepEqual(presence.json.clients, []);
  });

  it('answers 200 with text/event-stream, Cache-Control no-cache and X-Accel-Buffering no', async () => {
    const sse = await Sse.open(sseUrl([uniqueChannel('h')]));
    assert.equal(sse.status, 200);
    assert.match(sse.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.match(sse.headers.get('cache-control') ?? '', /no-cache/);
    assert.equal(sse.headers.get('x-accel-buffering'), 'no');
    sse.close();
  });
});

describe('section 6: the stream', () => {
  it('opens with retry: then herald.connected naming every channel with offset and epoch', async () => {
    const a = uniqueChannel('a');
    const b = uniqueChannel('b');
    await publish(hub, a, 1);
    await publish(hub, a, 2);
    const sse = await Sse.open(sseUrl([a, b]));
    const hello = await connected(sse);
    const fieldLines = sse.raw.split(/\r\n|\r|\n/).filter((l) => l !== '' && !l.startsWith(':'));
    assert.match(
      fieldLines[0] ?? '',
      /^retry: ?\d+$/,
      `the stream opens with retry:, got ${JSON.stringify(sse.raw.slice(0, 200))}`,
    );
    assert.ok((sse.retries[0] ?? 0) > 0);
    assert.equal(sse.events[0]?.event, 'herald.connected', 'the first event is herald.connected');
    assert.equal(typeof hello.clientId, 'string');
    assert.deepEqual(Object.keys(hello.channels).sort(), [a, b].sort());
    assert.equal(hello.channels[a].offset, 2);
    assert.equal(hello.channels[b].offset, 0);
    assert.equal(typeof hello.channels[a].epoch, 'string');
    assert.equal(typeof hello.channels[b].epoch, 'string');
    sse.close();
  });

  it('sends each publication as one event: id: cursor, event: only when it has one, data: the publication', async () => {
    const channel = uniqueChannel('ev');
    const sse = await Sse.open(sseUrl([channel]));
    await connected(sse);
    await publish(hub, channel, { plain: true });
    await publish(hub, channel, { named: true }, { event: 'status_update' });
    await sse.waitFor(() => sse.pubEvents().length === 2, 'two publication events');
    const [plain, named] = sse.pubEvents();
    assert.equal(plain?.event, undefined, 'no event: line for a publication without event');
    assert.equal(named?.event, 'status_update');
    for (const event of [plain, named]) {
      assert.equal(typeof event?.id, 'string');
      assert.notEqual(event?.id, '', 'a cursor in id:');
    }
    assert.notEqual(plain?.id, named?.id, 'every publication moves the cursor');
    const pubs = sse.pubs();
    assert.deepEqual(offsets(pubs), [1, 2]);
    assert.ok(!('event' in (pubs[0] as object)));
    assert.equal(pubs[1].event, 'status_update');
    sse.close();
  });

  it('a native EventSource gets publications without event in onmessage and named ones by listener', async () => {
    const channel = uniqueChannel('es');
    const source = new EventSource(sseUrl([channel]));
    const messages: any[] = [];
    const named: any[] = [];
    const hellos: any[] = [];
    source.onmessage = (e) => messages.push(JSON.parse(e.data));
    source.addEventListener('status_update', (e) => named.push(JSON.parse(e.data)));
    source.addEventListener('herald.connected', (e) => hellos.push(JSON.parse(e.data)));
    try {
      await until(() => hellos.length === 1, 'herald.connected');
      await publish(hub, channel, { n: 1 });
      await publish(hub, channel, { n: 2 }, { event: 'status_update' });
      await until(() => messages.length === 1 && named.length === 1, 'both events');
      assert.deepEqual(messages[0].data, { n: 1 });
      assert.deepEqual(named[0].data, { n: 2 });
    } finally {
      source.close();
    }
  });

  it('takes the token from an Authorization header too', async () => {
    const channel = uniqueChannel('hdr');
    const sse = await Sse.open(`${hub.url}/sse?${query([channel])}`, { authorization: `Bearer ${token}` });
    assert.equal(sse.status, 200);
    await connected(sse);
    sse.close();
  });

  it('takes the token from the cookie the deployment configures (HERALD_TOKEN_COOKIE)', async () => {
    const channel = uniqueChannel('cookie');
    const sse = await Sse.open(`${hub.url}/sse?${query([channel])}`, { cookie: `other=1; herald_token=${token}` });
    assert.equal(sse.status, 200, sse.body);
    await connected(sse);
    sse.close();
    const answer = await fetch(`${hub.url}/poll?${query([channel], { timeout: '0' })}`, {
      headers: { cookie: `herald_token=${token}` },
    });
    assert.equal(answer.status, 200);
    await answer.text();
  });

  it('sends herald.join and herald.leave only with joinLeave=1', async () => {
    const channel = uniqueChannel('jl');
    const watching = await Sse.open(sseUrl([channel], { joinLeave: '1' }));
    const quiet = await Sse.open(sseUrl([channel]));
    await connected(watching);
    await connected(quiet);
    const ws = await Ws.connect(hub.wsUrl, await mint({ sub: 'walt', channels: ['*'] }));
    await ws.ok('subscribe', { channel });
    await watching.waitFor(() => watching.named('herald.join').length >= 1, 'herald.join');
    assert.ok(JSON.stringify(watching.named('herald.join')).includes('walt'), 'the join names the user');
    ws.end();
    await watching.waitFor(() => watching.named('herald.leave').length >= 1, 'herald.leave');
    await sleep(100);
    assert.equal(quiet.events.filter((e) => e.event === 'herald.join' || e.event === 'herald.leave').length, 0);
    watching.close();
    quiet.close();
  });
});

describe('section 6: framing', () => {
  it('an event name cannot break the event framing (refused, or carried without forging events)', async () => {
    const channel = uniqueChannel('inject');
    const sse = await Sse.open(sseUrl([channel]));
    await connected(sse);
    let accepted = 0;
    for (const event of ['evil\nid: forged\ndata: {"forged":true}\n', 'cr\revent: forged', 'x\r\n\r\ndata: 1']) {
      const answer = await api(hub, 'POST', '/api/publish', { channel, data: { n: accepted }, event });
      if (answer.status === 200) accepted++;
      else assertError(answer, 400, `event ${JSON.stringify(event)}`);
    }
    await publish(hub, channel, 'last');
    await sse.waitFor(() => sse.pubs().some((p) => p.data === 'last'), 'the last publication');
    await sleep(100);
    assert.equal(sse.pubEvents().length, accepted + 1, `one event per publication: ${JSON.stringify(sse.events)}`);
    assert.ok(!sse.events.some((e) => e.id === 'forged' || e.event === 'forged'), 'no forged event or id');
    assert.deepEqual(offsets(sse.pubs()), range(1, accepted + 1));
    sse.close();
  });

  it('a channel named twice is delivered once per publication (or refused)', async () => {
    const channel = uniqueChannel('twice');
    const sse = await Sse.open(sseUrl([channel, channel]));
    if (sse.status !== 200) {
      assertError(
        { status: sse.status, headers: sse.headers, text: sse.body, json: sse.json },
        400,
        'a repeated channel',
      );
      return;
    }
    await connected(sse);
    await publish(hub, channel, 1);
    await publish(hub, channel, 2);
    await sse.waitFor(() => sse.pubs().length >= 2, 'two publications');
    await sleep(150);
    assert.deepEqual(offsets(sse.pubs()), [1, 2]);
    sse.close();
  });
});

describe('section 6: cursors', () => {
  it('resumes every channel from lastEventId: recovered for each, replay after herald.connected, then live', async () => {
    const a = uniqueChannel('ra');
    const b = uniqueChannel('rb');
    const first = await Sse.open(sseUrl([a, b]));
    await connected(first);
    await publish(hub, a, 'a1');
    await publish(hub, b, 'b1');
    await first.waitFor(() => first.pubEvents().length === 2, 'two publications');
    const cursor = first.pubEvents()[1]?.id as string;
    first.close();
    await publish(hub, a, 'a2');
    await publish(hub, b, 'b2');
    await publish(hub, a, 'a3');

    const resumed = await Sse.open(sseUrl([a, b], { lastEventId: cursor }));
    const hello = await connected(resumed);
    assert.equal(hello.channels[a].recovered, true);
    assert.equal(hello.channels[b].recovered, true);
    await resumed.waitFor(() => resumed.pubEvents().length === 3, 'the replay');
    // Order is per channel (section 8): across channels the replay may interleave either way.
    const ofChannel = (channel: string): string[] =>
      resumed
        .pubs()
        .filter((p) => p.channel === channel)
        .map((p) => p.data);
    assert.deepEqual(ofChannel(a), ['a2', 'a3']);
    assert.deepEqual(ofChannel(b), ['b2']);
    assert.equal(resumed.events[0]?.event, 'herald.connected', 'the replay follows herald.connected');
    await publish(hub, b, 'b3');
    await resumed.waitFor(() => resumed.pubEvents().length === 4, 'the live one');
    assert.equal(resumed.pubs()[3].data, 'b3');
    resumed.close();
  });

  it('a resume while publications keep coming is gapless: replay, then live, each once', async () => {
    const channel = uniqueChannel('busy');
    const first = await Sse.open(sseUrl([channel]));
    await connected(first);
    await publish(hub, channel, 1);
    await first.waitFor(() => first.pubEvents().length === 1, 'the first publication');
    const cursor = first.pubEvents()[0]?.id as string;
    first.close();
    let publishing = true;
    let last = 1;
    const publisher = (async () => {
      while (publishing && last < 300) last = (await publish(hub, channel, last + 1)).offset;
    })();
    await sleep(50);
    const resumed = await Sse.open(sseUrl([channel], { lastEventId: cursor }));
    await connected(resumed);
    await sleep(150);
    publishing = false;
    await publisher;
    await resumed.waitFor(() => resumed.pubs().at(-1)?.offset === last, 'everything up to the last publication');
    assert.deepEqual(offsets(resumed.pubs()), range(2, last));
    resumed.close();
  });

  it('on resume, recovered is present for every channel, false for one the cursor does not know', async () => {
    const known = uniqueChannel('known');
    const added = uniqueChannel('added');
    const first = await Sse.open(sseUrl([known]));
    await connected(first);
    await publish(hub, known, 1);
    await first.waitFor(() => first.pubEvents().length === 1, 'a publication');
    const cursor = first.pubEvents()[0]?.id as string;
    first.close();
    await publish(hub, added, 'x');
    const resumed = await Sse.open(sseUrl([known, added], { lastEventId: cursor }));
    const hello = await connected(resumed);
    assert.equal(hello.channels[known].recovered, true);
    assert.equal(hello.channels[added].recovered, false, 'no position there to recover (extension decision)');
    resumed.close();
  });

  it('the Last-Event-ID header wins over lastEventId', async () => {
    const channel = uniqueChannel('win');
    const first = await Sse.open(sseUrl([channel]));
    await connected(first);
    for (let i = 1; i <= 4; i++) await publish(hub, channel, i);
    await first.waitFor(() => first.pubEvents().length === 4, 'four publications');
    const after1 = first.pubEvents()[0]?.id as string;
    const after3 = first.pubEvents()[2]?.id as string;
    first.close();
    const resumed = await Sse.open(sseUrl([channel], { lastEventId: after1 }), { 'last-event-id': after3 });
    await connected(resumed);
    await resumed.waitFor(() => resumed.pubEvents().length >= 1, 'the replay');
    await sleep(150);
    assert.deepEqual(
      offsets(resumed.pubs()),
      [4],
      'resumed from the header cursor (after 3), not the query one (after 1)',
    );
    resumed.close();
  });

  it('a real EventSource resumes gaplessly by itself after its connection is cut', async () => {
    const channel = uniqueChannel('cut');
    const proxy = new TcpProxy(hub.port);
    await proxy.listen();
    const source = new EventSource(`${proxy.url}/sse?${query([channel], { token })}`);
    const received: any[] = [];
    const hellos: any[] = [];
    source.onmessage = (e) => received.push(JSON.parse(e.data));
    source.addEventListener('herald.connected', (e) => hellos.push(JSON.parse(e.data)));
    try {
      await until(() => hellos.length === 1, 'herald.connected');
      for (let i = 1; i <= 3; i++) await publish(hub, channel, i);
      await until(() => received.length === 3, 'three publications');
      proxy.pause();
      proxy.cutAll();
      for (let i = 4; i <= 6; i++) await publish(hub, channel, i);
      proxy.retarget(hub.port);
      await until(() => hellos.length === 2, 'the reconnect', 20_000);
      assert.equal(hellos[1].channels[channel].recovered, true, 'the reconnect resumed from a cursor');
      await publish(hub, channel, 7);
      await until(() => received.length >= 7, 'the gap and the live one', 10_000);
      await sleep(100);
      assert.deepEqual(offsets(received), range(1, 7), 'every publication once, in order');
    } finally {
      source.close();
      await proxy.close();
    }
  });

  it('a stream cut before its first publication also resumes (extension: herald.connected carries an id)', async () => {
    const channel = uniqueChannel('early');
    const proxy = new TcpProxy(hub.port);
    await proxy.listen();
    const source = new EventSource(`${proxy.url}/sse?${query([channel], { token })}`);
    const received: any[] = [];
    const hellos: any[] = [];
    source.onmessage = (e) => received.push(JSON.parse(e.data));
    source.addEventListener('herald.connected', (e) => hellos.push(JSON.parse(e.data)));
    try {
      await until(() => hellos.length === 1, 'herald.connected');
      proxy.pause();
      proxy.cutAll();
      await publish(hub, channel, 1);
      await publish(hub, channel, 2);
      proxy.retarget(hub.port);
      await until(() => received.length >= 2, 'the publications made while cut', 20_000);
      assert.deepEqual(offsets(received), [1, 2]);
    } finally {
      source.close();
      await proxy.close();
    }
  });
});
