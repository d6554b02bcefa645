/**
 * The one rule for a history page bounded in bytes (`HistoryQuery.maxBytes`), shared by every
 * broker so a replay pages alike on all of them: as many publications as fit in `maxBytes` of JSON
 * text, and at least one, so a page always makes progress. JSON length counts UTF-16 units, a
 * close and cheap stand-in for bytes in a bound that only has to hold within a small factor.
 */
import type { PublicationRecord } from './broker.js';

/** How many of `records` a page takes: from the oldest, or with `newest` from the newest. */
export function pageLength(
  records: readonly PublicationRecord[],
  maxBytes: number | undefined,
  newest = false,
): number {
  if (maxBytes === undefined) return records.length;
  let bytes = 0;
  for (let n = 0; n < records.length; n++) {
    const record = records[newest ? records.length - 1 - n : n] as PublicationRecord;
    bytes += record.json.length;
    if (bytes > maxBytes && n > 0) return n;
  }
  return records.length;
}

/** The page of `records` within `maxBytes` (see `pageLength`). */
export function pageWithin(
  records: readonly PublicationRecord[],
  maxBytes: number | undefined,
  newest = false,
): readonly PublicationRecord[] {
  const n = pageLength(records, maxBytes, newest);
  if (n === records.length) return records;
  return newest ? records.slice(records.length - n) : records.slice(0, n);
}
