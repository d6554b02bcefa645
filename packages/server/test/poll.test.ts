import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeCursor } from '@herald/protocol';
import { api, publish, sleep, startHub, token, type TestHub } from '../../../test/support/hub.ts';
import { poll } from '../../../test/support/poll.ts';

describe('long-polling', () => {
  let hub: TestHub;
  let alice: string;
  before(async () => {
    hub = await startHub({ origins: ['https://app.example'] });
    alice = await token({ sub: 'alice', channels: ['p:*'] });
  });
  after(() => hub.close());

  it('without a cursor waits from now and answers as soon as a publication comes', async () => {
    await publish(hub, 'p:now', 'old');
    const waiting = poll(hub.url, { channels: ['p:now'], token: alice, timeout: 30 });
    await sleep(200);
    const ack = await publish(hub, 'p:now', 'new', { event: 'e' });
    const answer = await waiting;
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(Object.keys(answer.body).sort(), ['channels', 'cursor', 'publications']);
    assert.deepEqual(
      answer.body.publications.map((p: any) => [p.offset, p.data, p.event]),
      [[2, 'new', 'e']],
    );
    assert.deepEqual(answer.body.channels, { 'p:now': { offset: 2, epoch: ack.epoch } });
    assert.deepEqual(decodeCursor(answer.body.cursor), new Map([['p:now', { offset: 2, epoch: ack.epoch }]]));
  });

  it('with a cursor answers at once with everything after it, marking each channel recovered', async () => {
    const a = await publish(hub, 'p:cur:a', 1);
    const b = await publish(hub, 'p:cur:b', 1);
    const first = await poll(hub.url, {
      channels: ['p:cur:a', 'p:cur:b'],
      token: alice,
      cursor: `h1,p:cur:a~0~${a.epoch},p:cur:b~0~${b.epoch}`,
    });
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.publications.map((p: any) => p.channel).sort(), ['p:cur:a', 'p:cur:b']);
    assert.equal(first.body.channels['p:cur:a'].recovered, true);
    assert.equal(first.body.channels['p:cur:b'].recovered, true);
    await publish(hub, 'p:cur:b', 2);
    await publish(hub, 'p:cur:a', 2);
    const second = await poll(hub.url, { channels: ['p:cur:a', 'p:cur:b'], token: alice, cursor: first.body.cursor });
    assert.deepEqual(second.body.publications.map((p: any) => `${p.channel}/${p.offset}`).sort(), [
      'p:cur:a/2',
      'p:cur:b/2',
    ]);
    const positions = decodeCursor(second.body.cursor);
    assert.equal(positions?.get('p:cur:a')?.offset, 2);
    assert.equal(positions?.get('p:cur:b')?.offset, 2);
  });

  it('answers an empty list when the timeout ends, with a cursor that resumes from there', async () => {
    const ack = await publish(hub, 'p:timeout', 'before');
    const empty = await poll(hub.url, { channels: ['p:timeout'], token: alice, timeout: 1 });
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.publications, []);
    assert.deepEqual(empty.body.channels, { 'p:timeout': { offset: 1, epoch: ack.epoch } });
    await publish(hub, 'p:timeout', 'between polls');
    const next = await poll(hub.url, { channels: ['p:timeout'], token: alice, cursor: empty.body.cursor, timeout: 5 });
    assert.deepEqual(
      next.body.publications.map((p: any) => p.data),
      ['between polls'],
    );
  });

  it('delivers ephemeral publications to a waiting poll but never replays them', async () => {
    const start = await poll(hub.url, { channels: ['p:eph'], token: alice, timeout: 1 });
    const waiting = poll(hub.url, { channels: ['p:eph'], token: alice, cursor: start.body.cursor, timeout: 30 });
    await sleep(200);
    await publish(hub, 'p:eph', 'typing', { ephemeral: true });
    const live = await waiting;
    assert.deepEqual(
      live.body.publications.map((p: any) => [p.data, 'offset' in p]),
      [['typing', false]],
    );
    await publish(hub, 'p:eph', 'stored');
    const replay = await poll(hub.url, { channels: ['p:eph'], token: alice, cursor: start.body.cursor, timeout: 5 });
    assert.deepEqual(
      replay.body.publications.map((p: any) => p.data),
      ['stored'],
    );
  });

  it('keeps waiting polls out of presence', async () => {
    const waiting = poll(hub.url, { channels: ['p:invisible'], token: alice, timeout: 2 });
    await sleep(300);
    const presence = await api(hub, 'GET', '/api/channels/p%3Ainvisible/presence');
    assert.deepEqual(presence.body, { clients: [] });
    await waiting;
  });

  it('takes the token from the Authorization header too', async () => {
    const answer = await poll(hub.url, {
      channels: ['p:header'],
      timeout: 0,
      headers: { authorization: `Bearer ${alice}` },
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body.publications, []);
  });

  it('sends CORS headers to allowed origins', async () => {
    const answer = await poll(hub.url, {
      channels: ['p:cors'],
      token: alice,
      timeout: 0,
      headers: { origin: 'https://app.example' },
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('access-control-allow-origin'), 'https://app.example');
  });

  it('refuses bad requests with JSON errors: 400, 401, 403, 405', async () => {
    const cases: Array<[Parameters<typeof poll>[1], number, string]> = [
      [{ channels: [], token: alice }, 400, 'bad_channel'],
      [{ channels: ['p:x', 'bad channel'], token: alice }, 400, 'bad_channel'],
      [{ channels: ['p:x'], token: alice, cursor: 'h9,nope' }, 400, 'bad_cursor'],
      [{ channels: ['p:x'], token: alice, timeout: -1 }, 400, 'bad_request'],
      [{ channels: ['p:x'] }, 401, 'unauthorized'],
      [{ channels: ['p:x'], token: `${alice}x` }, 401, 'unauthorized'],
      [{ channels: ['p:x', 'q:x'], token: alice }, 403, 'forbidden'],
      [{ channels: ['p:x'], token: alice, headers: { origin: 'https://evil.example' } }, 403, 'origin_not_allowed'],
    ];
    for (const [request, status, code] of cases) {
      const answer = await poll(hub.url, { timeout: 0, ...request });
      assert.equal(answer.status, status, JSON.stringify(request));
      assert.equal(answer.body.error.code, code, JSON.stringify(request));
      assert.equal(typeof answer.body.error.message, 'string');
    }
    const post = await fetch(`${hub.url}/poll?channel=p:x&token=${alice}`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(((await post.json()) as any).error.code, 'method_not_allowed');
  });
});
