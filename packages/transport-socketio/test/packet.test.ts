/**
 * The publication packets built once per publication, checked against what a Socket.IO client
 * decodes (the text of a socket.io-protocol v5 EVENT, inside an Engine.IO message packet, inside
 * an unmasked WebSocket text frame), and the event-name rules.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { publicationJson } from '@herald/protocol';
import type { PublicationRecord } from '@herald/server';
import { COMMANDS, HERALD_EVENTS, publicationEventName } from '../src/index.ts';
import { encodePublication, engineTextFrame, publicationPacketText } from '../src/packet.ts';

function record(fields: { event?: string; data: unknown; offset?: number }): PublicationRecord {
  const offset = fields.offset ?? 7;
  const json = publicationJson({
    channel: 'orders:42',
    offset,
    epoch: 'h4x9',
    dataJson: JSON.stringify(fields.data),
    ts: 1763700000000,
    ...(fields.event === undefined ? {} : { event: fields.event }),
  });
  return {
    channel: 'orders:42',
    offset,
    epoch: 'h4x9',
    json,
    ...(fields.event === undefined ? {} : { event: fields.event }),
  };
}

/** Decodes a server WebSocket text frame (unmasked, one fragment). */
function unframe(frame: Buffer): string {
  assert.equal(frame[0], 0x81);
  const len7 = (frame[1] as number) & 0x7f;
  assert.equal((frame[1] as number) & 0x80, 0, 'server frames are not masked');
  const [length, offset] =
    len7 < 126 ? [len7, 2] : len7 === 126 ? [frame.readUInt16BE(2), 4] : [Number(frame.readBigUInt64BE(2)), 10];
  assert.equal(frame.length, offset + length);
  return frame.subarray(offset).toString('utf8');
}

describe('Socket.IO publication packets', () => {
  it('emits unnamed publications as message(pub) and named ones as event(data, pub)', () => {
    const plain = record({ data: { text: 'hi' } });
    assert.equal(publicationPacketText(plain), `2["message",${plain.json}]`);
    const named = record({ data: { status: 'shipped' }, event: 'status_update' });
    const [name, data, pub] = JSON.parse(publicationPacketText(named).slice(1));
    assert.equal(name, 'status_update');
    assert.deepEqual(data, { status: 'shipped' });
    assert.deepEqual(pub, JSON.parse(named.json));
  });

  it('sends names a Socket.IO client reserves to message, and keeps herald.* for the hub', () => {
    for (const reserved of [
      'connect',
      'connect_error',
      'disconnect',
      'disconnecting',
      'newListener',
      'removeListener',
    ]) {
      assert.equal(publicationEventName(reserved), 'message');
    }
    assert.equal(publicationEventName('message'), 'message');
    assert.equal(publicationEventName(undefined), 'message');
    assert.equal(publicationEventName('error'), 'error');
    for (const name of Object.values(HERALD_EVENTS)) assert.match(name, /^herald\./);
  });

  it('frames the Engine.IO message packet for WebSocket, at every length class', () => {
    for (const size of [10, 125, 126, 65_535, 65_536, 200_000]) {
      const text = `2["message",${JSON.stringify('é'.repeat(Math.ceil(size / 2)))}]`;
      assert.equal(unframe(engineTextFrame(text)), `4${text}`);
    }
    const encoded = encodePublication(record({ data: 'x' }));
    assert.equal(unframe(encoded.options.wsPreEncodedFrame[0] as Buffer), `4${encoded.text}`);
    assert.equal(encoded.bytes, (encoded.options.wsPreEncodedFrame[0] as Buffer).length);
  });

  it('docs/socketio.md documents every command and hub event', () => {
    const doc = readFileSync(new URL('../../../docs/socketio.md', import.meta.url), 'utf8');
    for (const name of [...COMMANDS, ...Object.values(HERALD_EVENTS)]) {
      assert.ok(doc.includes(`\`${name}\``), `docs/socketio.md mentions ${name}`);
    }
  });
});
