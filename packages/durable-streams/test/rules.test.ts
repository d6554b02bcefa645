/** The write rules (decide.ts) and the record's fold (record.ts), case by case. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkProducer, compareBytes, decideAppend, written } from '../src/decide.ts';
import { DsError } from '../src/errors.ts';
import type { AppendRequest } from '../src/headers.ts';
import { formatOffset } from '../src/offsets.ts';
import type { DsPublication } from '../src/publication.ts';
import { createdRecord, fold, MAX_PRODUCERS, type StreamRecord } from '../src/record.ts';

const config = { contentType: 'text/plain', start: 0, inherited: [] };

function pub(offset: number, kind: DsPublication['kind'], extra: Partial<DsPublication> = {}): DsPublication {
  return { offset, kind, data: kind === 'append' ? 'x' : null, write: {}, ts: offset, ...extra };
}

function stream(): StreamRecord {
  return createdRecord(config, pub(5, 'create', { write: { config } }), 'e1');
}

function refusal(fn: () => unknown): { status: number; headers: Record<string, string> } {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DsError);
    return { status: error.status, headers: { ...error.headers } };
  }
  assert.fail('expected a refusal');
}

describe('producers (PROTOCOL.md 5.2.1)', () => {
  it('new, same epoch, new epoch, stale, duplicate, gap', () => {
    assert.deepEqual(checkProducer(undefined, { id: 'p', epoch: 0, seq: 0 }), { kind: 'accept' });
    assert.deepEqual(checkProducer(undefined, { id: 'p', epoch: 3, seq: 2 }), { kind: 'gap', expected: 0 });
    const state = { epoch: 1, seq: 4 };
    assert.deepEqual(checkProducer(state, { id: 'p', epoch: 1, seq: 5 }), { kind: 'accept' });
    assert.deepEqual(checkProducer(state, { id: 'p', epoch: 1, seq: 4 }), { kind: 'duplicate', highest: 4 });
    assert.deepEqual(checkProducer(state, { id: 'p', epoch: 1, seq: 0 }), { kind: 'duplicate', highest: 4 });
    assert.deepEqual(checkProducer(state, { id: 'p', epoch: 1, seq: 7 }), { kind: 'gap', expected: 5 });
    assert.deepEqual(checkProducer(state, { id: 'p', epoch: 0, seq: 9 }), { kind: 'stale', current: 1 });
    assert.deepEqual(checkProducer(state, { id: 'p', epoch: 2, seq: 0 }), { kind: 'accept' });
    assert.deepEqual(checkProducer(state, { id: 'p', epoch: 2, seq: 1 }), { kind: 'bad-epoch-start' });
  });
});

describe('append verdicts', () => {
  const text: AppendRequest = { contentType: 'text/plain', closed: false };

  it('plain appends write; an empty body needs Stream-Closed; content type must match', () => {
    assert.deepEqual(decideAppend(stream(), text, true), { kind: 'write', closes: false });
    assert.equal(refusal(() => decideAppend(stream(), text, false)).status, 400);
    assert.equal(refusal(() => decideAppend(stream(), { closed: false }, true)).status, 400);
    assert.equal(refusal(() => decideAppend(stream(), { ...text, contentType: 'application/json' }, true)).status, 409);
    assert.deepEqual(decideAppend(stream(), { ...text, contentType: 'TEXT/PLAIN; charset=utf-8' }, true), {
      kind: 'write',
      closes: false,
    });
  });

  it('a closed stream: 409 with Stream-Closed and the final offset first; a repeated close is 204', () => {
    const closed = fold(fold(stream(), pub(6, 'append')), pub(7, 'close'));
    const refused = refusal(() => decideAppend(closed, { ...text, contentType: 'application/json' }, true));
    assert.deepEqual(refused, {
      status: 409,
      headers: { 'Stream-Closed': 'true', 'Stream-Next-Offset': formatOffset(closed.tail) },
    });
    const again = decideAppend(closed, { closed: true, contentType: 'application/json' }, false);
    assert.equal(again.kind === 'answer' && again.status, 204);
    assert.equal(refusal(() => decideAppend(closed, { ...text, closed: true }, true)).status, 409);
  });

  it('the producer that closed a stream gets 204 for its retry, any other 409', () => {
    const producer = { id: 'p', epoch: 0, seq: 0 };
    const closedBy = fold(stream(), pub(6, 'append', { write: { producer, closes: true } }));
    assert.equal(closedBy.closed, true);
    const retry = decideAppend(closedBy, { ...text, closed: true, producer }, true);
    assert.equal(retry.kind === 'answer' && retry.status, 204);
    assert.equal(
      refusal(() => decideAppend(closedBy, { ...text, closed: true, producer: { ...producer, seq: 1 } }, true)).status,
      409,
    );
    assert.equal(
      refusal(() => decideAppend(closedBy, { ...text, producer: { ...producer, id: 'q' } }, true)).status,
      409,
    );
  });

  it('producer refusals carry their headers; a duplicate wins over a Stream-Seq conflict', () => {
    const record = fold(
      stream(),
      pub(6, 'append', { write: { producer: { id: 'p', epoch: 1, seq: 2 }, streamSeq: 'b' } }),
    );
    assert.deepEqual(
      refusal(() => decideAppend(record, { ...text, producer: { id: 'p', epoch: 0, seq: 3 } }, true)),
      {
        status: 403,
        headers: { 'Producer-Epoch': '1' },
      },
    );
    assert.deepEqual(
      refusal(() => decideAppend(record, { ...text, producer: { id: 'p', epoch: 1, seq: 9 } }, true)),
      {
        status: 409,
        headers: { 'Producer-Expected-Seq': '3', 'Producer-Received-Seq': '9' },
      },
    );
    const duplicate = decideAppend(record, { ...text, streamSeq: 'a', producer: { id: 'p', epoch: 1, seq: 2 } }, true);
    assert.deepEqual(duplicate, {
      kind: 'answer',
      status: 204,
      headers: { 'Stream-Next-Offset': formatOffset(record.tail), 'Producer-Epoch': '1', 'Producer-Seq': '2' },
    });
    assert.equal(refusal(() => decideAppend(record, { ...text, streamSeq: 'a' }, true)).status, 409);
    assert.equal(refusal(() => decideAppend(record, { ...text, streamSeq: 'b' }, true)).status, 409);
    assert.equal(decideAppend(record, { ...text, streamSeq: 'c' }, true).kind, 'write');
  });

  it('success statuses: 200 for a producer append, 204 otherwise', () => {
    const producer = { id: 'p', epoch: 0, seq: 0 };
    const after = fold(stream(), pub(6, 'append', { write: { producer } }));
    assert.equal(written(after, { ...text, producer }, true).status, 200);
    assert.equal(written(after, text, true).status, 204);
    assert.equal(written(after, { closed: true, producer }, false).status, 204);
  });

  it('Stream-Seq compares bytes: "10" < "2", "B" < "a"', () => {
    assert.ok(compareBytes('10', '2') < 0);
    assert.ok(compareBytes('B', 'a') < 0);
    assert.ok(compareBytes('10', '09') > 0);
  });
});

describe('the record folds its channel in order', () => {
  it('positions: the create at 0 (or 1 with content), the tail at the last data', () => {
    const empty = stream();
    assert.deepEqual({ tail: empty.tail, base: empty.base, top: empty.top }, { tail: 0, base: -5, top: 5 });
    const withData = createdRecord(config, pub(5, 'create', { data: 'hi' }), 'e1');
    assert.equal(withData.tail, 1);
    let r = fold(empty, pub(6, 'append'));
    r = fold(r, pub(7, undefined));
    r = fold(r, pub(8, 'append', { data: null }));
    assert.deepEqual({ tail: r.tail, top: r.top }, { tail: 1, top: 8 });
    assert.equal(fold(r, pub(8, 'append')), r, 'an offset already folded changes nothing');
  });

  it('a delete makes the deletion pending, and nothing after it counts', () => {
    const deleted = fold(fold(stream(), pub(6, 'append')), pub(7, 'delete'));
    assert.equal(deleted.deletion, 'pending');
    const after = fold(deleted, pub(8, 'append'));
    assert.deepEqual({ tail: after.tail, top: after.top }, { tail: deleted.tail, top: 8 });
  });

  it('remembers at most MAX_PRODUCERS producers, forgetting the one that wrote longest ago', () => {
    let r = stream();
    for (let i = 0; i <= MAX_PRODUCERS; i++) {
      r = fold(r, pub(6 + i, 'append', { ts: 1000 + i, write: { producer: { id: `p${i}`, epoch: 0, seq: 0 } } }));
    }
    assert.equal(Object.keys(r.producers).length, MAX_PRODUCERS);
    assert.equal(r.producers.p0, undefined);
    assert.ok(r.producers[`p${MAX_PRODUCERS}`] !== undefined);
  });
});
