/**
 * PROTOCOL.md section 7, `GET /poll`: cursor (absent = from now), timeout (default 25), the answer
 * shape, answering as soon as a publication exists, refusals as for SSE, and a chain of polls
 * receiving every publication exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Herald,
  assertError,
  killAll,
  mint,
  offsets,
  poll,
  publish,
  range,
  sleep,
  uniqueChannel,
  type Answer,
} from './support.ts';

let hub: Herald;
let token: string;
/** A poll without `timeout` on a quiet channel, started first and checked last (default 25 s). */
let idle: Promise<{ answer: Answer; ms: number }>;
before(async () => {
  hub = await Herald.start();
  token = await mint({ channels: ['*'] });
  const channel = uniqueChannel('idle');
  const first = await poll(hub, [channel], { token, timeout: '1' });
  const started = Date.now();
  idle = poll(hub, [channel], { token, cursor: first.json.cursor }).then((answer) => ({
    answer,
    ms: Date.now() - started,
  }));
});
after(killAll);

describe('section 7: answers', () => {
  it('without a cursor starts from now: earlier publications are not returned; the answer has cursor, publications, channels', async () => {
    const channel = uniqueChannel('now');
    const ack = await publish(hub, channel, 'before');
    const started = Date.now();
    const answer = await poll(hub, [channel], { token, timeout: '1' });
    const ms = Date.now() - started;
    assert.equal(answer.status, 200);
    assert.equal(typeof answer.json.cursor, 'string');
    assert.deepEqual(answer.json.publications, [], 'nothing after "now"');
    assert.equal(answer.json.channels[channel].offset, 1);
    assert.equal(answer.json.channels[channel].epoch, ack.epoch);
    assert.ok(ms >= 900, `an empty answer comes when the timeout ends (${ms} ms)`);
  });

  it('without a cursor, a publication made while the poll waits is answered', async () => {
    const channel = uniqueChannel('during');
    const waiting = poll(hub, [channel], { token, timeout: '15' });
    await sleep(300);
    await publish(hub, channel, 'during');
    const answer = await waiting;
    assert.deepEqual(
      answer.json.publications.map((p: any) => p.data),
      ['during'],
      '"from now" is when the request came, not when it is answered',
    );
  });

  it('answers at once when a publication after the cursor exists, and as soon as one is published', async () => {
    const channel = uniqueChannel('soon');
    const first = await poll(hub, [channel], { token, timeout: '1' });
    await publish(hub, channel, 'one');
    const ready = await poll(hub, [channel], { token, cursor: first.json.cursor, timeout: '20' });
    assert.deepEqual(offsets(ready.json.publications), [1]);
    assert.equal(ready.json.publications[0].data, 'one');
    assert.equal(ready.json.channels[channel].offset, 1);

    const started = Date.now();
    const waiting = poll(hub, [channel], { token, cursor: ready.json.cursor, timeout: '20' });
    await sleep(300);
    await publish(hub, channel, 'two');
    const answer = await waiting;
    const ms = Date.now() - started;
    assert.deepEqual(
      answer.json.publications.map((p: any) => p.data),
      ['two'],
    );
    assert.ok(ms < 20_000, `answered before its timeout (${ms} ms)`);
  });

  it('resumes several channels with one cursor', async () => {
    const a = uniqueChannel('pa');
    const b = uniqueChannel('pb');
    const first = await poll(hub, [a, b], { token, timeout: '1' });
    assert.deepEqual(Object.keys(first.json.channels).sort(), [a, b].sort());
    await publish(hub, a, 'a1');
    await publish(hub, b, 'b1');
    await publish(hub, a, 'a2');
    const seen: any[] = [];
    let cursor = first.json.cursor;
    for (let i = 0; i < 5 && seen.length < 3; i++) {
      const answer = await poll(hub, [a, b], { token, cursor, timeout: '2' });
      seen.push(...answer.json.publications);
      cursor = answer.json.cursor;
    }
    assert.deepEqual(
      seen.filter((p) => p.channel === a).map((p) => p.data),
      ['a1', 'a2'],
    );
    assert.deepEqual(
      seen.filter((p) => p.channel === b).map((p) => p.data),
      ['b1'],
    );
  });

  it('a chain of polls receives every publication once, in order, while they are published', async () => {
    const channel = uniqueChannel('chain');
    const first = await poll(hub, [channel], { token, timeout: '1' });
    let done = false;
    const publisher = (async () => {
      for (let i = 1; i <= 60; i++) {
        await publish(hub, channel, i);
        if (i % 7 === 0) await sleep(5);
      }
      done = true;
    })();
    const received: any[] = [];
    let cursor = first.json.cursor;
    for (let i = 0; i < 200 && received.length < 60; i++) {
      const answer = await poll(hub, [channel], { token, cursor, timeout: '5' });
      assert.equal(answer.status, 200);
      received.push(...answer.json.publications);
      cursor = answer.json.cursor;
      if (done && answer.json.publications.length === 0) break;
    }
    await publisher;
    assert.deepEqual(offsets(received), range(1, 60));
  });

  it('refuses as SSE does: 400 channel, 401 token, 403 channel; 400 for a cursor it did not issue (extension)', async () => {
    const limited = await mint({ channels: ['ok:*'] });
    assertError(await poll(hub, [], { token }), 400, 'no channel');
    assertError(await poll(hub, ['bad name'], { token }), 400, 'bad channel');
    assertError(await poll(hub, ['ok:1'], { token: 'garbage' }), 401, 'bad token');
    assertError(await poll(hub, ['no:1'], { token: limited }), 403, 'forbidden channel');
    assertError(await poll(hub, ['ok:1', 'no:1'], { token: limited }), 403, 'one forbidden among several');
    assertError(
      await poll(hub, ['ok:1'], { token: limited, cursor: 'not-a-cursor' }),
      400,
      'a cursor the hub did not issue',
    );
    for (const timeout of ['abc', '-1']) {
      const answer = await poll(hub, ['ok:1'], { token: limited, timeout });
      assert.ok([200, 400].includes(answer.status), `timeout=${timeout}: a clear answer, got ${answer.status}`);
    }
  });
});

describe('section 7: timeout', () => {
  it('defaults to 25 s', async (t) => {
    const { answer, ms } = await idle;
    t.diagnostic(JSON.stringify({ defaultTimeoutAnsweredAfterMs: ms }));
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json.publications, []);
    assert.ok(ms >= 24_000, `the empty answer came after the 25 s default (${ms} ms)`);
  });
});
