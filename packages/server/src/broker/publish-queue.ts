/**
 * The bound on a broker's publish pipeline (guarantee: a publish is answered quickly, one way or
 * the other). A broker that sends publications over a network gathers them into batches and
 * keeps several batches in flight; without a bound, a publisher faster than the broker would
 * grow that queue until every publish waited longer than its client's timeout, and the client's
 * retries would queue behind the originals. So a broker refuses a new publish at once:
 *
 * - with 429 `rate_limited` and `Retry-After` when `maxPending` publications are accepted and not
 *   yet answered (the node publishes faster than the broker stores);
 * - with 503 `broker_unavailable` and `Retry-After` while the oldest publication not answered yet
 *   was accepted `maxWaitMs` ago (a broker that stalled without disconnecting, or one that
 *   answers more slowly than publications come: the wait would only grow past clients' timeouts).
 *
 * A refused publish was never sent: retrying it cannot store it twice.
 */
import { HeraldError } from '@herald/protocol';

export interface PublishQueueLimits {
  /** Publications accepted by one node's broker and not answered yet. */
  readonly maxPending: number;
  /** Milliseconds the oldest unanswered publication may have waited before new ones are refused. */
  readonly maxWaitMs: number;
}

export const PUBLISH_QUEUE_DEFAULTS: PublishQueueLimits = Object.freeze({ maxPending: 10_000, maxWaitMs: 2_000 });

/** Limits with defaults, checked (an error names the bad field). */
export function publishQueueLimits(limits: Partial<PublishQueueLimits> = {}): PublishQueueLimits {
  const resolved = { ...PUBLISH_QUEUE_DEFAULTS, ...limits };
  if (!Number.isInteger(resolved.maxPending) || resolved.maxPending < 1) {
    throw new Error('publishQueue.maxPending must be a positive integer');
  }
  if (!Number.isFinite(resolved.maxWaitMs) || resolved.maxWaitMs < 1) {
    throw new Error('publishQueue.maxWaitMs must be a positive number of milliseconds');
  }
  return Object.freeze(resolved);
}

/**
 * Throws the refusal when a publish may not join the pipeline now. `pending` counts publications
 * accepted and not answered; `oldestAt` is when the oldest of them was accepted (undefined when
 * none waits).
 */
export function admitPublish(
  limits: PublishQueueLimits,
  pending: number,
  oldestAt: number | undefined,
  now: number,
): void {
  if (pending >= limits.maxPending) {
    throw new HeraldError(
      'rate_limited',
      `the broker's publish queue is full (${limits.maxPending} publications waiting); nothing was published`,
      { retryAfterSeconds: 1 },
    );
  }
  if (oldestAt !== undefined && now - oldestAt >= limits.maxWaitMs) {
    throw new HeraldError(
      'broker_unavailable',
      `the broker has left a publication unanswered for ${Math.round(now - oldestAt)} ms; nothing was published`,
      { retryAfterSeconds: 1 },
    );
  }
}
