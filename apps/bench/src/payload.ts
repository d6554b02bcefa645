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
export const ST_MARKER = '"st":';

/** What a received bench publication carries: its publish time, and its scheduled time or -1. */
export interface Times {
  bt: number;
  st: number;
}

const QUOTE = 0x22;
const COLON = 0x3a;
const COMMA = 0x2c;
const DOT = 0x2e;
const ZERO = 0x30;
const B = 0x62;
const S = 0x73;
const T = 0x74;

/**
 * Reads the times of the bench publication in `data[start, end)` into `out`, without a copy;
 * false when the message is not a bench publication. A loop over the bytes rather than
 * `Buffer#indexOf`: the load generator runs it on every message, and two `indexOf` calls per
 * message cost it 40 % of a core at 700,000 messages per second. Relies on the key order
 * `benchPayload` writes: `"bt"`, then `"st"` when there is one.
 */
export function readTimes(data: Buffer, start: number, end: number, out: Times): boolean {
  for (let i = start + 1; i + 4 < end; i++) {
    if (data[i] !== B || data[i + 1] !== T || data[i - 1] !== QUOTE || data[i + 2] !== QUOTE || data[i + 3] !== COLON)
      continue;
    out.bt = readNumber(data, i + 4, end);
    const after = numberEnd;
    out.st =
      after + 6 <= end &&
      data[after] === COMMA &&
      data[after + 1] === QUOTE &&
      data[after + 2] === S &&
      data[after + 3] === T &&
      data[after + 4] === QUOTE &&
      data[after + 5] === COLON
        ? readNumber(data, after + 6, end)
        : -1;
    return true;
  }
  return false;
}

/** Where the last `readNumber` stopped. */
let numberEnd = 0;

/** A non-negative decimal number (the bench's times) at `data[at]`. */
function readNumber(data: Buffer, at: number, end: number): number {
  let value = 0;
  let i = at;
  for (; i < end; i++) {
    const digit = (data[i] as number) - ZERO;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  if (i < end && data[i] === DOT) {
    let scale = 0.1;
    for (i++; i < end; i++, scale /= 10) {
      const digit = (data[i] as number) - ZERO;
      if (digit < 0 || digit > 9) break;
      value += digit * scale;
    }
  }
  numberEnd = i;
  return value;
}
