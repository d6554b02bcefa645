import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRecoverable, mergeRecovery, type HistoryResult, type PublicationRecord } from '@herald/server';

const rec = (offset: number, epoch = 'E'): PublicationRecord => ({
  channel: 'c',
  offset,
  epoch,
  json: `{"channel":"c","offset":${offset}}`,
});
const ephemeral = (): PublicationRecord => ({ channel: 'c', offset: 0, epoch: '', json: '{"channel":"c"}' });
const range = (from: number, to: number): PublicationRecord[] =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => rec(from + i));
const offsets = (records: readonly PublicationRecord[]): number[] => records.map((r) => r.offset);

describe('isRecoverable', () => {
  const stream = { epoch: 'E', top: 10, oldest: 6 };
  it('serves positions from oldest-1 to top in the same epoch', () => {
    for (const offset of [5, 6, 9, 10])
      assert.equal(isRecoverable({ offset, epoch: 'E' }, stream), true, String(offset));
  });
  it('refuses trimmed positions, positions ahead of the stream, and other epochs', () => {
    assert.equal(isRecoverable({ offset: 4, epoch: 'E' }, stream), false);
    assert.equal(isRecoverable({ offset: 11, epoch: 'E' }, stream), false);
    assert.equal(isRecoverable({ offset: 8, epoch: 'F' }, stream), false);
  });
  it('serves the empty position of an empty stream', () => {
    assert.equal(isRecoverable({ offset: 0, epoch: 'E' }, { epoch: 'E', top: 0, oldest: 1 }), true);
    assert.equal(isRecoverable({ offset: 3, epoch: 'E' }, { epoch: 'E', top: 3, oldest: 4 }), true);
  });
});

describe('mergeRecovery', () => {
  const history = (publications: PublicationRecord[], top: number, recovered?: boolean): HistoryResult => ({
    publications,
    top: { offset: top, epoch: 'E' },
    ...(recovered === undefined ? {} : { recovered }),
  });

  it('without a position starts at the top and keeps only live publications after it', () => {
    const merged = mergeRecovery(undefined, history([], 5), [rec(4), rec(5), rec(6), ephemeral(), rec(7)]);
    assert.equal(merged.recovered, undefined);
    assert.deepEqual(merged.publications, []);
    assert.deepEqual(merged.position, { offset: 5, epoch: 'E' });
    assert.deepEqual(offsets(merged.live), [6, 0, 7]);
  });

  it('recovers: missed publications in the answer, overlapping live ones dropped', () => {
    const merged = mergeRecovery({ offset: 2, epoch: 'E' }, history(range(3, 6), 6, true), [rec(5), rec(6), rec(7)]);
    assert.equal(merged.recovered, true);
    assert.deepEqual(offsets(merged.publications), [3, 4, 5, 6]);
    assert.deepEqual(merged.position, { offset: 6, epoch: 'E' });
    assert.deepEqual(offsets(merged.live), [7]);
  });

  it('recovers an up-to-date position with nothing missed', () => {
    const merged = mergeRecovery({ offset: 6, epoch: 'E' }, history([], 6, true), []);
    assert.equal(merged.recovered, true);
    assert.deepEqual(merged.publications, []);
    assert.deepEqual(merged.position, { offset: 6, epoch: 'E' });
  });

  it('says recovered: false, with nothing, when history cannot serve the position', () => {
    const merged = mergeRecovery({ offset: 1, epoch: 'E' }, history([], 9, false), [rec(10)]);
    assert.equal(merged.recovered, false);
    assert.deepEqual(merged.publications, []);
    assert.deepEqual(merged.position, { offset: 9, epoch: 'E' });
    assert.deepEqual(offsets(merged.live), [10]);
  });

  it('never returns a partial result: a hole between history and live is recovered: false', () => {
    const merged = mergeRecovery({ offset: 2, epoch: 'E' }, history(range(3, 4), 4, true), [rec(6), rec(7)]);
    assert.equal(merged.recovered, false);
    assert.deepEqual(merged.publications, []);
  });

  it('does not believe a history read that skips, repeats or changes epoch after the position', () => {
    for (const publications of [
      range(4, 6),
      [rec(3), rec(5), rec(6)],
      [rec(3), rec(3), rec(4), rec(5), rec(6)],
      [rec(3, 'F'), rec(4), rec(5), rec(6)],
    ]) {
      const merged = mergeRecovery({ offset: 2, epoch: 'E' }, history(publications, 6, true), []);
      assert.equal(merged.recovered, false, offsets(publications).join(','));
      assert.deepEqual(merged.publications, []);
    }
  });

  it('takes a read that stops short of the top as a page: the rest is read from where it ended', () => {
    const merged = mergeRecovery({ offset: 2, epoch: 'E' }, history(range(3, 4), 8, true), [rec(9)]);
    assert.equal(merged.recovered, true);
    assert.deepEqual(offsets(merged.publications), [3, 4]);
    assert.deepEqual(merged.position, { offset: 4, epoch: 'E' });
    assert.equal(merged.more, true);
    assert.deepEqual(merged.live, [], 'nothing goes live before the pages meet what is held');
  });

  it('reads on, instead of giving up, when held publications were dropped for the queue bound', () => {
    const held = [rec(9), rec(10)];
    const complete = mergeRecovery({ offset: 2, epoch: 'E' }, history(range(3, 6), 6, true), held);
    assert.equal(complete.recovered, false, 'nothing was dropped: a hole means the broker lost 7 and 8');
    const dropped = mergeRecovery({ offset: 2, epoch: 'E' }, history(range(3, 6), 6, true), {
      records: held,
      dropped: { offset: 8, epoch: 'E' },
    });
    assert.equal(dropped.recovered, true);
    assert.equal(dropped.more, true, 'the dropped 7 and 8 are in history: read on from 6');
    assert.deepEqual(dropped.position, { offset: 6, epoch: 'E' });
    const emptied = mergeRecovery({ offset: 2, epoch: 'E' }, history(range(3, 6), 6, true), {
      records: [],
      dropped: { offset: 8, epoch: 'E' },
    });
    assert.equal(emptied.more, true, 'nothing held at all: still read on up to what was dropped');
  });

  it('reads on from the top when a plain subscribe lost held publications to the bound', () => {
    const merged = mergeRecovery(undefined, history([], 5), { records: [rec(8)], dropped: { offset: 7, epoch: 'E' } });
    assert.equal(merged.recovered, undefined);
    assert.equal(merged.more, true);
    assert.deepEqual(merged.position, { offset: 5, epoch: 'E' });
  });

  it('drops live publications of another epoch', () => {
    const merged = mergeRecovery({ offset: 2, epoch: 'E' }, history(range(3, 3), 3, true), [rec(4, 'F'), rec(4)]);
    assert.equal(merged.recovered, true);
    assert.deepEqual(offsets(merged.live), [4]);
    assert.equal(merged.live[0]?.epoch, 'E');
  });
});
