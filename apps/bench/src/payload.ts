/**
 * The bench publication: `{"bt": <publish time, us>, "seq": n, "pad": "xxxx"}`, padded to the
 * requested size as JSON text. Every server sends the same object; receivers find `"bt":` in
 * the bytes without parsing the whole message.
 */
export interface BenchPayload {
  readonly bt: number;
  readonly seq: number;
  readonly pad: string;
}

export function benchPayload(bt: number, seq: number, bytes: number): BenchPayload {
  const bare = JSON.stringify({ bt, seq, pad: '' }).length;
  return { bt, seq, pad: 'x'.repeat(Math.max(0, bytes - bare)) };
}

export const BT_MARKER = '"bt":';
const BT_BYTES = Buffer.from(BT_MARKER);

/** The publish time carried by a message, or -1 when the message is not a bench publication. */
export function btOfBuffer(data: Buffer): number {
  const i = data.indexOf(BT_BYTES);
  if (i < 0) return -1;
  return parseFloat(data.toString('latin1', i + BT_BYTES.length, i + BT_BYTES.length + 24));
}

export function btOfText(text: string, from = 0): number {
  const i = text.indexOf(BT_MARKER, from);
  if (i < 0) return -1;
  return parseFloat(text.slice(i + BT_MARKER.length, i + BT_MARKER.length + 24));
}
