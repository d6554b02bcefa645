/**
 * Durable Streams offsets. A stream's position is a whole number: every publication of its
 * channel takes the next one (position = the record's base + the Herald offset), and a stream's
 * offset names the position of the last data it covers. On the wire a position is 16 decimal
 * digits, `_`, and 16 zeros (`0000000000000042_0000000000000000`): fixed width, so offsets of one
 * stream sort as strings, and the shape the protocol's own examples use, so the start of every
 * stream is `0000000000000000_0000000000000000`. `-1` (the start) and `now` (the tail) are the
 * protocol's sentinels.
 */
import { DsError } from './errors.js';

const WIDTH = 16;
const ZEROS = '0'.repeat(WIDTH);
const FORMAT = /^(\d{16})_(\d{16})$/;

export type ReadFrom = { readonly kind: 'position'; readonly position: number } | { readonly kind: 'now' };

export function formatOffset(position: number): string {
  return `${String(position).padStart(WIDTH, '0')}_${ZEROS}`;
}

/**
 * The position of an offset this server issued; 400 for anything else. A position past what a
 * JavaScript number holds exactly stays Infinity, which is past every tail.
 */
export function parseOffset(text: string): number {
  const match = FORMAT.exec(text);
  if (match === null || match[2] !== ZEROS) {
    throw new DsError(400, 'bad_request', 'the offset is not one this server issued');
  }
  const position = Number(match[1]);
  return Number.isSafeInteger(position) ? position : Number.POSITIVE_INFINITY;
}

/**
 * The `offset` query parameter: at most once, never empty. Absent means the start for a catch-up
 * read; the live modes require it (PROTOCOL.md 5.7, 5.8).
 */
export function readFrom(params: URLSearchParams, live: boolean): ReadFrom {
  const values = params.getAll('offset');
  if (values.length > 1) throw new DsError(400, 'bad_request', 'offset may be given once');
  const value = values[0];
  if (value === undefined) {
    if (live) throw new DsError(400, 'bad_request', 'live reads need an offset (-1 for the start, or now)');
    return { kind: 'position', position: 0 };
  }
  if (value === '-1') return { kind: 'position', position: 0 };
  if (value === 'now') return { kind: 'now' };
  return { kind: 'position', position: parseOffset(value) };
}
