/**
 * The roll-up of text streams (docs/streams.md), a pure function: consecutive stored pieces of one
 * stream become one publication, so a subscriber's window, a resume and a history read carry the
 * text so far once instead of one publication per token.
 *
 * Contract: the input is contiguous (offsets n, n+1, ...; every caller reads it so), and each
 * output item covers a contiguous run of it, `from` to `offset`, in order. So after an item at
 * offset M a subscriber has every publication up to M, exactly as without roll-up, and resuming
 * from M stays gapless. That is why only *consecutive* pieces merge: a piece of another stream or
 * any other publication in between ends the run (merging across it would deliver M before an
 * offset below M).
 */
import { publicationJson } from '@herald/protocol';
import type { PublicationRecord } from '../broker/broker.js';
import { streamPart, type StreamPart } from './stream-part.js';

interface Run {
  readonly first: PublicationRecord;
  readonly head: StreamPart;
  last: PublicationRecord;
  lastPart: StreamPart;
  readonly texts: string[];
  count: number;
}

/**
 * Rolls `records` (contiguous, oldest first) up. A run holding the stream's opening becomes
 * `{"stream": {"id", "status", "rolledUp": true}, "data": <text so far>}`; a run of appends only,
 * `{"append": {"to", "from", "status"?}, "data": <the appends joined>}`. A run of one piece, and
 * every other publication, passes unchanged. A closing append ends its run.
 */
export function rollUp(records: readonly PublicationRecord[]): PublicationRecord[] {
  const out: PublicationRecord[] = [];
  let run: Run | undefined;
  const end = (): void => {
    if (run !== undefined) out.push(runRecord(run));
    run = undefined;
  };
  for (const record of records) {
    const part = streamPart(record);
    if (part === undefined) {
      end();
      out.push(record);
      continue;
    }
    if (run !== undefined && run.head.id === part.id && !part.opens && run.lastPart.status === 'open') {
      run.last = record;
      run.lastPart = part;
      run.texts.push(part.text);
      run.count++;
      continue;
    }
    end();
    run = { first: record, head: part, last: record, lastPart: part, texts: [part.text], count: 1 };
  }
  end();
  return out;
}

/** The offset a rolled-up publication starts at (its own offset for one that is not rolled up). */
export function coveredFrom(record: PublicationRecord): number {
  return firsts.get(record) ?? record.offset;
}

const firsts = new WeakMap<PublicationRecord, number>();
const ids = new WeakMap<PublicationRecord, number>();

/** The text stream a publication (stored or rolled up) belongs to, if any. */
export function streamIdOf(record: PublicationRecord): number | undefined {
  return ids.get(record) ?? streamPart(record)?.id;
}

/**
 * What a subscriber joining without a position gets: the streams opened in `records` (contiguous,
 * read from just before the oldest open stream's opening) and still open at their end, rolled up;
 * every other publication is left out (the subscriber asked from now on).
 */
export function openStreamsSoFar(records: readonly PublicationRecord[]): {
  records: PublicationRecord[];
  open: Set<number>;
} {
  const open = new Set<number>();
  for (const record of records) {
    const part = streamPart(record);
    if (part === undefined) continue;
    if (part.opens) open.add(part.id);
    else if (part.status !== 'open') open.delete(part.id);
  }
  const rolled = rollUp(records).filter((record) => {
    const id = streamIdOf(record);
    return id !== undefined && open.has(id);
  });
  return { records: rolled, open };
}

function runRecord(run: Run): PublicationRecord {
  if (run.count === 1) return run.first;
  const { first, head, last, lastPart } = run;
  const member = head.opens
    ? `"stream":{"id":${head.id},"status":"${lastPart.status}","rolledUp":true}`
    : `"append":{"to":${head.id},"from":${first.offset}${lastPart.status === 'open' ? '' : `,"status":"${lastPart.status}"`}}`;
  const event = head.event;
  const json = publicationJson({
    channel: last.channel,
    offset: last.offset,
    epoch: last.epoch,
    dataJson: JSON.stringify(run.texts.join('')),
    ...(event === undefined ? {} : { event }),
    ts: lastPart.ts,
    ...(head.info === undefined ? {} : { infoJson: JSON.stringify(head.info) }),
    streamJson: member,
  });
  const record: PublicationRecord = {
    channel: last.channel,
    offset: last.offset,
    epoch: last.epoch,
    ...(event === undefined ? {} : { event }),
    json,
  };
  firsts.set(record, first.offset);
  ids.set(record, head.id);
  return record;
}
