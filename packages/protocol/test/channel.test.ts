import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { channelNamespace, compilePatterns, isValidChannel, isValidPattern } from '@herald/protocol';

describe('channel names', () => {
  it('match ^[A-Za-z0-9_.:@/=-]{1,200}$', () => {
    for (const ok of ['a', 'orders:42', 'user@x.com/inbox', 'a=b_c-d.e', 'x'.repeat(200)]) {
      assert.equal(isValidChannel(ok), true, ok);
    }
    for (const bad of ['', 'a b', 'a,b', 'a~b', 'a*', 'é', 'x'.repeat(201), 'a\n', 42, null, undefined]) {
      assert.equal(isValidChannel(bad), false, String(bad));
    }
  });

  it('have a namespace before the first colon', () => {
    assert.equal(channelNamespace('orders:42:x'), 'orders');
    assert.equal(channelNamespace('plain'), 'plain');
  });
});

describe('compilePatterns', () => {
  it('matches exact names and * as any run of characters (also none)', () => {
    const match = compilePatterns(['orders:*', 'chat', 'a*b*c']);
    assert.equal(match('orders:42'), true);
    assert.equal(match('orders:'), true);
    assert.equal(match('orders'), false);
    assert.equal(match('chat'), true);
    assert.equal(match('chat:1'), false);
    assert.equal(match('abc'), true);
    assert.equal(match('a-x-b-y-c'), true);
    assert.equal(match('a-x-c'), false);
  });

  it('treats every character but * literally', () => {
    const match = compilePatterns(['a.b', 'x.*', 'p/q=r-s']);
    assert.equal(match('a.b'), true);
    assert.equal(match('axb'), false);
    assert.equal(match('x.1'), true);
    assert.equal(match('xy1'), false);
    assert.equal(match('p/q=r-s'), true);
  });

  it('grants nothing for no patterns, and ignores invalid ones rather than widening', () => {
    assert.equal(compilePatterns(undefined)('a'), false);
    assert.equal(compilePatterns([])('a'), false);
    const match = compilePatterns(['orders:[', '.*', 'ok']);
    assert.equal(match('orders:['), false);
    assert.equal(match('anything'), false);
    assert.equal(match('ok'), true);
    assert.equal(isValidPattern('orders:['), false);
    assert.equal(isValidPattern('*'), true);
  });

  it('lets * alone match every channel', () => {
    const match = compilePatterns(['*']);
    assert.equal(match('a'), true);
    assert.equal(match('orders:42/x'), true);
  });
});
