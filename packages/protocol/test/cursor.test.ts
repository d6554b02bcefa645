import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCursor, encodeCursor, isValidEpoch } from '@herald/protocol';

const channel = fc.stringMatching(/^[A-Za-z0-9_.:@/=-]{1,40}$/);
const epoch = fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/);
const offset = fc.integer({ min: 0, max: 2 ** 48 });

describe('cursor', () => {
  it('round-trips every set of positions', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(channel, offset, epoch), { selector: (t) => t[0], maxLength: 8 }),
        (entries) => {
          const positions = new Map(entries.map(([c, o, e]) => [c, { offset: o, epoch: e }]));
          assert.deepEqual(decodeCursor(encodeCursor(positions)), positions);
        },
      ),
    );
  });

  it('is plain and header-safe', () => {
    const cursor = encodeCursor([
      ['orders:42', { offset: 17, epoch: 'h4x9' }],
      ['chat', { offset: 0, epoch: 'ab-_' }],
    ]);
    assert.equal(cursor, 'h1,orders:42~17~h4x9,chat~0~ab-_');
    assert.match(cursor, /^[\x21-\x7e]+$/);
  });

  it('refuses anything the hub did not write', () => {
    for (const text of [
      '',
      'h2',
      'x1,a~1~e',
      'h1,a~1',
      'h1,a~1~e~f',
      'h1,a~-1~e',
      'h1,a~1.5~e',
      'h1,a~1~',
      'h1,~1~e',
      'h1,a b~1~e',
      'h1,a~1~e!',
      'h1,a~1234567890123456~e',
      `h1,${'a'.repeat(201)}~1~e`,
      `h1${',a~1~e'.repeat(3000)}`,
    ]) {
      assert.equal(decodeCursor(text), undefined, text.slice(0, 40));
    }
    assert.deepEqual(decodeCursor('h1'), new Map());
  });

  it('checks epochs', () => {
    assert.equal(isValidEpoch('h4x9'), true);
    assert.equal(isValidEpoch(''), false);
    assert.equal(isValidEpoch('a~b'), false);
    assert.equal(isValidEpoch('x'.repeat(65)), false);
    assert.equal(isValidEpoch(3), false);
  });
});
