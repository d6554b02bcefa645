/**
 * Server-to-client WebSocket text frames (RFC 6455 section 5.2), built once per publication and
 * written as-is to every subscriber's socket. Server frames are never masked, so the same bytes
 * are valid on every connection; this is what lets fan-out skip per-subscriber framing.
 */

/** A server's ping, no payload (RFC 6455 section 5.5.2): FIN and opcode 0x9, length 0. */
export const PING_FRAME = Buffer.from([0x89, 0x00]);

export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN + opcode 1 (text)
  if (headerLength === 2) {
    frame[1] = length;
  } else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(text, headerLength, 'utf8');
  return frame;
}
