import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publicationJson } from '@herald/protocol';
import {
  coveredFrom,
  openStreamsSoFar,
  rollUp,
  streamMember,
  streamPart,
  type PublicationRecord,
} from '@herald/server';

/** A stored publication as a broker would build it. */
function rec(offset: number, data: unknown, stream?: Record<string, unknown>): PublicationRecord {
  const streamJson = stream === undefined ? undefined : streamMember({ ...stream, data });
  const json = publicationJson({
    channel: 'c',
    offset,
    epoch: 'E',
    dataJson: JSON.stringify(data),
    ts: 1000 + offset,
    ...(streamJson === undefined ? {} : { streamJson }),
  });
  return { channel: 'c', offset, epoch: 'E', json };
}
const open = (offset: number, text: string): PublicationRecord => rec(offset, text, { stream: { status: 'open' } });
const append = (offset: number, to: number, text: string, status?: string): PublicationRecord =>
  rec(offset, text, { append: status === undefined ? { to } : { to, status } });
const parsed = (records: readonly PublicationRecord[]): any[] => records.map((r) => JSON.parse(r.json));

describe('stream pieces', () => {
  it('are recognised from the stored JSON, and other publications are not', () => {
    assert.deepEqual(streamPart(open(4, 'Hel'))?.id, 4);
    assert.equal(streamPart(open(4, 'Hel'))?.opens, true);
    assert.deepEqual(
      { id: streamPart(append(5, 4, 'lo', 'done'))?.id, status: streamPart(append(5, 4, 'lo', 'done'))?.status },
      { id: 4, status: 'done' },
    );
    // A plain publication whose data has a key named "append" is not a piece.
    assert.equal(streamPart(rec(6, { append: { to: 4 } })), undefined);
    assert.equal(streamPart(rec(7, 'text')), undefined);
  });
  it('refuse bad publish fields with bad_request', () => {
    const bad = [
      { stream: { status: 'open' }, append: { to: 1 }, data: 'x' },
      { stream: { status: 'done' }, data: 'x' },
      { stream: { status: 'open' }, data: { not: 'text' } },
      { append: { to: 0 }, data: 'x' },
      { append: { to: 3, status: 'finished' }, data: 'x' },
      { append: { to: 3, extra: 1 }, data: 'x' },
      { append: { to: 3 }, data: 'x', ephemeral: true },
    ];
    for (const input of bad) assert.throws(() => streamMember(input), { code: 'bad_request' }, JSON.stringify(input));
    assert.equal(streamMember({ data: 'x' }), undefined);
  });
});

describe('rollUp', () => {
  it('merges a stream read from its opening into one publication holding the text so far', () => {
    const out = parsed(rollUp([open(1, 'Hel'), append(2, 1, 'lo, '), append(3, 1, 'world')]));
    assert.deepEqual(out, [
      {
        channel: 'c',
        offset: 3,
        epoch: 'E',
        data: 'Hello, world',
        ts: 1003,
        stream: { id: 1, status: 'open', rolledUp: true },
      },
    ]);
  });
  it('merges appends of a stream followed from before into one append covering them', () => {
    const records = rollUp([append(5, 1, 'a'), append(6, 1, 'b'), append(7, 1, 'c', 'done')]);
    assert.deepEqual(
      parsed(records).map((p) => [p.offset, p.data, p.append]),
      [[7, 'abc', { to: 1, from: 5, status: 'done' }]],
    );
    assert.equal(coveredFrom(records[0] as PublicationRecord), 5);
  });
  it('never lets an item overtake an offset below it: runs end at any other publication', () => {
    const input = [
      open(1, 'A'),
      append(2, 1, 'a'),
      rec(3, 'plain'),
      open(4, 'B'),
      append(5, 1, 'b'),
      append(6, 4, 'x'),
    ];
    const out = rollUp(input);
    // Offsets strictly increase and every input offset is covered exactly once.
    const covered: number[] = [];
    for (const r of out) for (let o = coveredFrom(r); o <= r.offset; o++) covered.push(o);
    assert.deepEqual(covered, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(
      parsed(out).map((p) => p.data),
      ['Aa', 'plain', 'B', 'b', 'x'],
    );
  });
  it('ends a run at the close, and passes single pieces and plain publications unchanged', () => {
    const single = append(9, 1, 'z');
    const input = [append(7, 1, 'y', 'done'), append(8, 1, 'late'), single];
    const out = rollUp(input);
    assert.equal(out[0], input[0]);
    assert.deepEqual(
      parsed(out).map((p) => [p.offset, p.data]),
      [
        [7, 'y'],
        [9, 'latez'],
      ],
    );
  });
  it('gives a joiner only the streams still open, rolled up', () => {
    const input = [open(1, 'A'), rec(2, 'plain'), open(3, 'B'), append(4, 3, 'b', 'done'), append(5, 1, 'a')];
    const joined = openStreamsSoFar(input);
    assert.deepEqual([...joined.open], [1]);
    assert.deepEqual(
      parsed(joined.records).map((p) => [p.offset, p.data]),
      [
        [1, 'A'],
        [5, 'a'],
      ],
    );
  });
});
