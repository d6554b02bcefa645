/**
 * Recovery as pure decisions (no I/O): whether a position can be served from a stream, and how
 * a history read merges with the live publications buffered while it ran. Neither ever returns
 * a partial result: a client gets every publication after its position, or `recovered: false`.
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
  /** The subscriber's position once the answer is delivered. */
  readonly position: Position;
  /** Buffered live publications to deliver after the answer, in order. */
  readonly live: readonly PublicationRecord[];
}

/**
 * Merges a history read with the publications that arrived live while it ran (the subscriber
 * was registered before the read, so together they cover everything). Live ones already in the
 * history, or older than the answer's position, are dropped; a hole between the two means the
 * broker lost something, and is reported as `recovered: false` rather than delivered with a gap.
 */
export function mergeRecovery(
  since: Position | undefined,
  history: HistoryResult,
  buffered: readonly PublicationRecord[],
): MergedRecovery {
  const top = history.top;
  const afterTop = (from: Position): PublicationRecord[] =>
    buffered.filter((r) => r.offset === 0 || (r.epoch === from.epoch && r.offset > from.offset));

  if (since === undefined) return { publications: [], position: top, live: afterTop(top) };
  if (history.recovered !== true || !followsExactly(since, history.publications)) {
    return { recovered: false, publications: [], position: top, live: afterTop(top) };
  }
  const last = history.publications.at(-1);
  const reached: Position = last
    ? { offset: last.offset, epoch: last.epoch }
    : { offset: since.offset, epoch: top.epoch };
  const live = afterTop(reached);
  const firstStored = live.find((r) => r.offset !== 0);
  const contiguous = firstStored === undefined || firstStored.offset === reached.offset + 1;
  if (!contiguous || reached.offset < top.offset) {
    // The history read and the live buffer do not meet: never hand out a result with a hole.
    return { recovered: false, publications: [], position: top, live: afterTop(top) };
  }
  return { recovered: true, publications: history.publications, position: reached, live };
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
