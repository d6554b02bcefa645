/**
 * Recovery as pure decisions (no I/O): whether a position can be served from a stream, and how
 * a history read merges with the live publications held while it ran. Neither ever hides a gap:
 * a client gets every publication after its position (in pages when a read is bounded, each
 * continuing the last), or `recovered: false`.
 */
import type { Position } from '@herald/protocol';
import type { HistoryResult, PublicationRecord } from '../broker/broker.js';

export interface StreamBounds {
  readonly epoch: string;
  /** Latest stored offset, 0 when nothing was ever stored. */
  readonly top: number;
  /** Offset of the oldest publication still retained; top + 1 when none is. */
  readonly oldest: number;
}

/** A position is servable when its epoch matches and nothing after it has been trimmed. */
export function isRecoverable(since: Position, stream: StreamBounds): boolean {
  return since.epoch === stream.epoch && since.offset <= stream.top && since.offset >= stream.oldest - 1;
}

export interface MergedRecovery {
  /** Present only when a position was asked for. */
  readonly recovered?: boolean;
  /** What the answer carries, oldest first: the missed publications (empty unless recovered). */
  readonly publications: readonly PublicationRecord[];
  /** The subscriber's position once the answer's publications are delivered. */
  readonly position: Position;
  /** Held live publications to deliver after the answer, in order (empty while `more`). */
  readonly live: readonly PublicationRecord[];
  /**
   * The publications do not reach the held live ones yet: history has more after `position`
   * (a read bounded in bytes stops early), or the held ones were dropped to stay within the queue
   * bound. Read on from `position` before going live.
   */
  readonly more: boolean;
}

/** The live publications held while a history read ran. */
export interface Held {
  /** Oldest first. */
  readonly records: readonly PublicationRecord[];
  /**
   * The newest publication dropped from `records` to stay within the queue bound, if any: it is in
   * history, and the reads must reach it before the held ones can follow.
   */
  readonly dropped?: Position;
  /**
   * `records` may skip publications (a pub/sub that lost some, for a hole fill): a gap after the
   * read then asks to read on, instead of meaning that the broker lost them.
   */
  readonly lossy?: boolean;
}

/**
 * Merges a history read with the publications that arrived live while it ran (the subscriber
 * was registered before the read, so together they cover everything). Live ones already in the
 * history, or older than the answer's position, are dropped.
 *
 * A hole between history and the held ones means the broker lost something, and is reported as
 * `recovered: false` rather than delivered with a gap; unless the hole is explained (held ones
 * were dropped for the bound, or may be missing: `Held`), and then `more` asks to read on.
 */
export function mergeRecovery(
  since: Position | undefined,
  history: HistoryResult,
  held: Held | readonly PublicationRecord[],
): MergedRecovery {
  const h: Held = Array.isArray(held) ? { records: held as readonly PublicationRecord[] } : (held as Held);
  const top = history.top;
  if (since === undefined) return meet(undefined, [], top, top, h);
  if (history.recovered !== true || !followsExactly(since, history.publications)) {
    return meet(false, [], top, top, h);
  }
  const last = history.publications.at(-1);
  const reached: Position = last
    ? { offset: last.offset, epoch: last.epoch }
    : { offset: since.offset, epoch: top.epoch };
  if (reached.offset < top.offset) {
    // A read bounded in bytes: the rest comes in later pages, then the held ones.
    return { recovered: true, publications: history.publications, position: reached, live: [], more: true };
  }
  return meet(true, history.publications, reached, top, h);
}

/** Joins `publications` (ending at `reached`) with the held live ones after it, if they meet. */
function meet(
  recovered: boolean | undefined,
  publications: readonly PublicationRecord[],
  reached: Position,
  top: Position,
  held: Held,
): MergedRecovery {
  const base = recovered === undefined ? {} : { recovered };
  const dropped = held.dropped;
  if (dropped !== undefined && dropped.epoch === reached.epoch && dropped.offset > reached.offset) {
    // What was dropped lies ahead: read it from history first.
    return { ...base, publications, position: reached, live: [], more: true };
  }
  const live = held.records.filter((r) => r.offset === 0 || (r.epoch === reached.epoch && r.offset > reached.offset));
  const firstStored = live.find((r) => r.offset !== 0);
  const contiguous = firstStored === undefined || firstStored.offset === reached.offset + 1;
  if (contiguous) return { ...base, publications, position: reached, live, more: false };
  if (held.lossy === true || dropped !== undefined)
    return { ...base, publications, position: reached, live: [], more: true };
  // Held publications that do not follow the top: the broker skipped some. Not recoverable.
  if (recovered === true) return { recovered: false, publications: [], position: top, live: [], more: false };
  return { ...base, publications: [], position: top, live, more: false };
}

/**
 * Whether `publications` continue `since` with no hole: since.offset + 1, + 2, ... in its epoch.
 * A broker answering `recovered: true` with anything else is not believed (never a silent gap).
 */
function followsExactly(since: Position, publications: readonly PublicationRecord[]): boolean {
  let expected = since.offset + 1;
  for (const record of publications) {
    if (record.offset !== expected || record.epoch !== since.epoch) return false;
    expected++;
  }
  return true;
}
