/**
 * One publication on its way to subscribers (core/delivery.ts): each encoding is made once per
 * publication, also when another encoding is built on it (a WebSocket frame with a ping behind
 * it, an SSE event inside an HTTP/1.1 chunk).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PublicationRecord } from '../src/broker/broker.ts';
import { Delivery, defineEncoder } from '../src/core/delivery.ts';

const record: PublicationRecord = { channel: 'c', offset: 1, epoch: 'e', json: '{"n":1}' };

describe('delivery encodings', () => {
  it('encodes once per publication, and an encoding built on another reuses it', () => {
    let bodies = 0;
    const body = defineEncoder((r) => {
      bodies++;
      return `data: ${r.json}`;
    });
    const framed = defineEncoder((_r, delivery) => `[${delivery.encoded(body)}]`);
    const delivery = new Delivery(record);
    for (let subscriber = 0; subscriber < 3; subscriber++) {
      assert.equal(delivery.encoded(body), 'data: {"n":1}');
      assert.equal(delivery.encoded(framed), '[data: {"n":1}]');
    }
    assert.equal(bodies, 1);
    // Another publication is encoded anew.
    assert.equal(new Delivery({ ...record, offset: 2 }).encoded(framed), '[data: {"n":1}]');
    assert.equal(bodies, 2);
  });
});
