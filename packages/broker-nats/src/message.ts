/**
 * How publications sit in JetStream messages. A message holds one publication, or several
 * consecutive publications of one channel (a batch: what a node gathered for the channel while
 * its previous message was on the way, nats-publisher.ts):
 *
 *   one:    body = the publication JSON;
 *           headers Herald-Offset, Herald-Epoch, Herald-Event (when it has one)
 *   batch:  body = for each publication `<event>\n<json>\n` (event '' for none);
 *           headers Herald-Offset (the first), Herald-Epoch, Herald-Count (2 or more), and
 *           Herald-Keyed = the index of the one publication that has an idempotency key, if any
 *           (the message's Nats-Msg-Id is that key)
 *
 * Event names have no control characters (the hub refuses them) and publication JSON has no raw
 * newline (JSON.stringify escapes them), so the newlines separate the parts unambiguously. A
 * message of one publication is the format every node has always written and read.
 */
import type { PublicationRecord } from '@herald/server';
import { headers, type MsgHdrs } from 'nats';
import { HEADER } from './names.js';

export interface DecodedMessage {
  /** Offsets first .. first + records.length - 1, in order. */
  readonly first: number;
  readonly epoch: string;
  readonly records: readonly PublicationRecord[];
  /** The index of the publication the message's Nats-Msg-Id belongs to. */
  readonly keyed: number | undefined;
}

export function record(
  channel: string,
  offset: number,
  epoch: string,
  event: string | undefined,
  json: string,
): PublicationRecord {
  return event === undefined || event === ''
    ? { channel, offset, epoch, json }
    : { channel, offset, epoch, event, json };
}

/** The body and headers of a message holding `records` (consecutive offsets of one channel). */
export function encodeMessage(
  records: readonly PublicationRecord[],
  keyed: number | undefined,
): { payload: string; headers: MsgHdrs } {
  const first = records[0];
  if (first === undefined) throw new Error('a message holds at least one publication');
  const h = headers();
  h.set(HEADER.offset, String(first.offset));
  h.set(HEADER.epoch, first.epoch);
  if (records.length === 1) {
    if (first.event !== undefined) h.set(HEADER.event, first.event);
    return { payload: first.json, headers: h };
  }
  h.set(HEADER.count, String(records.length));
  if (keyed !== undefined) h.set(HEADER.keyed, String(keyed));
  let payload = '';
  for (const r of records) payload += `${r.event ?? ''}\n${r.json}\n`;
  return { payload, headers: h };
}

/** The publications of a stored or republished message of `channel`. Throws on a malformed one. */
export function decodeMessage(channel: string, h: MsgHdrs | undefined, body: string): DecodedMessage {
  const first = Number(h?.get(HEADER.offset));
  const epoch = h?.get(HEADER.epoch) ?? '';
  if (!Number.isSafeInteger(first) || first < 1 || epoch === '') throw new Error('message without offset or epoch');
  const countText = h?.get(HEADER.count) ?? '';
  if (countText === '') {
    return { first, epoch, records: [record(channel, first, epoch, h?.get(HEADER.event), body)], keyed: undefined };
  }
  const count = Number(countText);
  const records: PublicationRecord[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const a = body.indexOf('\n', at);
    const b = a < 0 ? -1 : body.indexOf('\n', a + 1);
    if (b < 0) throw new Error('malformed batch message');
    records.push(record(channel, first + i, epoch, body.slice(at, a), body.slice(a + 1, b)));
    at = b + 1;
  }
  const keyedText = h?.get(HEADER.keyed) ?? '';
  return { first, epoch, records, keyed: keyedText === '' ? undefined : Number(keyedText) };
}
