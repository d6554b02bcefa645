/**
 * The sweeps' index (core/time-index.ts), as the hub keeps sessions by token expiry: it yields
 * exactly the entries whose expiry has passed, to the millisecond within a second's bucket, and an
 * entry moved with new credentials is found by its new expiry only.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimeIndex } from '../src/core/time-index.ts';

interface Entry {
  readonly name: string;
  credentials: { readonly expiresAt?: number };
}

const entry = (name: string, expiresAt?: number): Entry => ({
  name,
  credentials: expiresAt === undefined ? {} : { expiresAt },
});
const names = (entries: Iterable<Entry>): string[] => [...entries].map((e) => e.name).sort();

describe('time index', () => {
  it('yields the entries expired at `now`, to the millisecond, and none without an expiry', () => {
    const index = new TimeIndex<Entry>((e) => e.credentials.expiresAt);
    for (const e of [entry('a', 10_200), entry('b', 10_800), entry('c', 11_000), entry('never'), entry('d', 9_000)]) {
      index.add(e);
    }
    assert.equal(index.size, 4);
    assert.deepEqual(names(index.due(8_999)), []);
    assert.deepEqual(names(index.due(10_500)), ['a', 'd']);
    assert.deepEqual(names(index.due(10_800)), ['a', 'b', 'd']);
    assert.deepEqual(names(index.due(11_000)), ['a', 'b', 'c', 'd']);
  });

  it('forgets a deleted entry, and finds a moved one by its new expiry only', () => {
    const index = new TimeIndex<Entry>((e) => e.credentials.expiresAt);
    const refreshed = entry('refreshed', 5_000);
    const ended = entry('ended', 5_000);
    index.add(refreshed);
    index.add(ended);
    index.delete(ended);
    // A refresh: delete with the old credentials, then add with the new ones.
    index.delete(refreshed);
    refreshed.credentials = { expiresAt: 60_000 };
    index.add(refreshed);
    assert.equal(index.size, 1);
    assert.deepEqual(names(index.due(30_000)), []);
    assert.deepEqual(names(index.due(60_000)), ['refreshed']);
    // Refreshed to a token without expiry: never yielded again.
    index.delete(refreshed);
    refreshed.credentials = {};
    index.add(refreshed);
    assert.equal(index.size, 0);
    assert.deepEqual(names(index.due(Number.MAX_SAFE_INTEGER)), []);
  });
});
