/** The SDK's pure parts: SSE parsing, reconnect decisions, token expiry, per-channel dedupe. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Subscription, type Publication } from '@herald/client';
import { backoffDelay, reconnectDelay } from '../src/reconnect.ts';
import { sseParser } from '../src/sse-parser.ts';
import { renewDelay, tokenExpiry } from '../src/token.ts';
import { token } from '../../../test/support/hub.ts';

describe('sseParser', () => {
  it('dispatches events split anywhere across chunks, ignoring comments, id and retry', () => {
    const text =
      'retry: 2000\n\nid: h1,a~0~e\nevent: herald.connected\ndata: {"x":1}\n\n: ping\n\ndata: {"a":\ndata: 2}\r\n\r\n';
    for (let size = 1; size <= text.length; size += 7) {
      const events: [string, string][] = [];
      const feed = sseParser((event, data) => events.push([event, data]));
      for (let i = 0; i < text.length; i += size) feed(text.slice(i, i + size));
      assert.deepEqual(events, [
        ['herald.connected', '{"x":1}'],
        ['message', '{"a":\n2}'],
      ]);
    }
  });
});

describe('reconnect decisions', () => {
  const s = { minReconnectDelayMs: 100, maxReconnectDelayMs: 1000 };
  it('full jitter below min * 2^attempt, capped', () => {
    assert.equal(
      backoffDelay(0, s, () => 0.999),
      99,
    );
    assert.equal(
      backoffDelay(3, s, () => 0.5),
      400,
    );
    assert.equal(
      backoffDelay(30, s, () => 0.999),
      999,
    );
    assert.equal(
      backoffDelay(30, s, () => 0),
      0,
    );
  });
  it('follows the close codes', () => {
    const top = () => 0.999;
    for (const code of [1000, 1009, 4001, 4002]) assert.equal(reconnectDelay(code, true, 0, s, top), undefined);
    for (const code of [1001, 4003, 4004, 4007]) assert.equal(reconnectDelay(code, undefined, 9, s, top), 99);
    assert.equal(reconnectDelay(4005, true, 0, s, top), 799, 'rate limited starts the backoff high');
    assert.equal(reconnectDelay(4005, true, 1, s, top), 999, 'and grows from there (capped)');
    assert.equal(reconnectDelay(4005, true, 1, { ...s, maxReconnectDelayMs: 5000 }, top), 1598);
    assert.equal(reconnectDelay(1006, undefined, 2, s, top), 399);
    assert.equal(reconnectDelay(4010, false, 0, s, top), undefined, "the hub's advice decides unknown codes");
    assert.equal(reconnectDelay(4008, true, 1, s, top), 199, 'disconnected by the server: backoff');
    assert.equal(reconnectDelay(4008, false, 0, s, top), undefined, 'reconnect: false always stops');
    assert.equal(reconnectDelay(1001, false, 0, s, top), undefined, 'even for a code that would reconnect');
  });
});

describe('tokens', () => {
  it('reads exp, and renews a third early, at most 30 s early', async () => {
    const jwt = await token({ expiresIn: 60 });
    const exp = tokenExpiry(jwt)!;
    assert.ok(Math.abs(exp - Date.now() - 60_000) < 2000);
    assert.equal(tokenExpiry(await token()), undefined);
    assert.equal(tokenExpiry('not a jwt'), undefined);
    assert.equal(renewDelay(3000), 2000);
    assert.equal(renewDelay(3_600_000), 3_570_000);
  });
});

describe('Subscription positions', () => {
  const pub = (offset: number, epoch = 'e1'): Publication => ({ channel: 'c:1', offset, epoch, data: offset, ts: 0 });

  it('drops duplicates, refuses gaps and foreign epochs, passes ephemeral ones', () => {
    const sub = new Subscription('c:1', {}, () => undefined);
    const got: unknown[] = [];
    sub.on('publication', (p) => got.push(p.data));
    sub._confirm({ offset: 2, epoch: 'e1' }, true);
    assert.equal(sub._deliver(pub(2)), true, 'duplicate: fine, not delivered');
    assert.equal(sub._deliver(pub(3)), true);
    assert.equal(sub._deliver(pub(5)), false, 'gap');
    assert.equal(sub._deliver(pub(4, 'e2')), false, 'another epoch');
    assert.equal(sub._deliver({ channel: 'c:1', data: 'eph', ts: 0 }), true);
    assert.deepEqual(got, [3, 'eph']);
    assert.deepEqual(sub.position, { offset: 3, epoch: 'e1' });
  });

  it('reports resumes: recovered keeps the position, not recovered starts over at the hub', () => {
    const sub = new Subscription('c:1', { since: { offset: 3, epoch: 'e1' } }, () => undefined);
    const heard: boolean[] = [];
    sub.on('recovered', (r) => heard.push(r.recovered));
    sub._confirm({ offset: 9, epoch: 'e1', recovered: true }, true);
    assert.deepEqual(sub.position, { offset: 3, epoch: 'e1' });
    sub._confirm({ offset: 9, epoch: 'e1', recovered: true }, false);
    sub._confirm({ offset: 0, epoch: 'e2', recovered: false }, false);
    assert.deepEqual(sub.position, { offset: 0, epoch: 'e2' });
    assert.deepEqual(heard, [true, false], 'a quiet resume is not reported, a failed one always is');
  });
});
