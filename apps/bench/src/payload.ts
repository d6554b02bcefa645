/**
 * The bench publication: `{"bt": <publish time, us>, "st"?: <scheduled time, us>, "seq": n,
 * "pad": "xxxx"}`, padded to the requested size as JSON text. Every server sends the same object;
 * receivers find `"bt":` (and `"st":`) in the bytes without parsing the whole message. `bt` is
 * when the publish was made (the HTTP request was sent, for a separate publisher); `st` is when it
 * was due on the publisher's schedule, so receive minus `st` says whether the system keeps up.
 */
export interface BenchPayload {
  readonly bt: number;
  readonly st?: number;
  readonly seq: number;
  readonly pad: string;
}

export function benchPayload(bt: number, seq: number, bytes: number, st?: number): BenchPayload {
  const head = st === undefined ? { bt, seq } : { bt, st, seq };
  const bare = JSON.stringify({ ...head, pad: '' }).length;
  return { ...head, pad: 'x'.repeat(Math.max(0, bytes - bare)) };
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

export const ST_MARKER = '"st":';
const ST_BYTES = Buffer.from(ST_MARKER);

/** The scheduled time carried by a message, or -1 when it carries none. */
export function stOfBuffer(data: Buffer): number {
  const i = data.indexOf(ST_BYTES);
  if (i < 0) return -1;
  return parseFloat(data.toString('latin1', i + ST_BYTES.length, i + ST_BYTES.length + 24));
}
