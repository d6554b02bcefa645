/** RFC 6455 section 5.2 frames for the bench's own WebSocket code (reference server, clients). */

/**
 * A final frame of `opcode` with its header written and room for `length` payload bytes (after a
 * 4-byte mask key when `masked`, which the caller fills): the frame and where the payload starts.
 */
export function allocFrame(opcode: number, length: number, masked: boolean): { frame: Buffer; payloadAt: number } {
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const maskBit = masked ? 0x80 : 0;
  const payloadAt = header + (masked ? 4 : 0);
  const frame = Buffer.allocUnsafe(payloadAt + length);
  frame[0] = 0x80 | opcode;
  if (header === 2) frame[1] = maskBit | length;
  else if (header === 4) {
    frame[1] = maskBit | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = maskBit | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  return { frame, payloadAt };
}

/** An unmasked server-to-client text frame, built once per broadcast. */
export function textFrame(text: string): Buffer {
  const { frame, payloadAt } = allocFrame(0x1, Buffer.byteLength(text), false);
  frame.write(text, payloadAt, 'utf8');
  return frame;
}
