/**
 * Publishing in batches. Every publish made during one event-loop turn waits for the end of the
 * turn (`setImmediate`) and leaves with the others in one EVALSHA of the batch script
 * (scripts.ts PUBLISH_BATCH): one command, one round trip and one script run for all of them
 * instead of one each. A lone publish on an idle node leaves as soon as the current turn ends.
 *
 * Order: batches are sent on the one commands connection and never wait for each other; Redis
 * runs a connection's commands in the order sent, and a batch in its own order, so publications
 * of a channel are stored (and fanned out) in the order `publish` was called.
 *
 * Failure: a batch fails or succeeds as a whole from the caller's view. A batch that failed may
 * still have run in Redis (a timeout, or an error part-way through the script); its publications
 * are then stored but unacknowledged, exactly like a single publish that timed out, and a retry
 * with the same idempotency key is answered with the first result, never stored twice.
 *
 * Bound: `admitPublish` refuses a publish at once when too many wait, or when the oldest batch
 * in flight has waited too long (publish-queue.ts in @herald/server).
 */
import { publicationJson } from '@herald/protocol';
import {
  IDEMPOTENCY_WINDOW_MS,
  TopConflictError,
  admitPublish,
  newEpoch,
  type PublishDraft,
  type PublishQueueLimits,
  type PublishResult,
} from '@herald/server';
import type { RedisKeys } from './keys.js';
import { decodeRecord } from './record-text.js';

/** Publications per script run: long enough to amortize a round trip, short enough not to block Redis long. */
const MAX_BATCH_ITEMS = 256;
/** A turn's publications leave in two script runs once there are this many or more (see `batchItems`). */
const SPLIT_FROM = 16;
/** Publication bytes per script run, so a batch of large publications stays a modest command. */
const MAX_BATCH_BYTES = 1024 * 1024;

export interface BatchSettings {
  readonly size: number;
  readonly ttlMs: number;
  readonly metaTtlMs: number;
}

/** The broker's side: the run mark of the Redis now connected (throws when not known yet) and the script run. */
export interface BatchRunner {
  runMark(): string;
  run(keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

interface Waiting {
  readonly draft: PublishDraft;
  readonly resolve: (result: PublishResult) => void;
  readonly reject: (error: unknown) => void;
}

interface Flight {
  readonly sentAt: number;
}

/**
 * Publications per script run for a turn that gathered `waiting`: at least two runs once there
 * are `SPLIT_FROM`, so that Redis works on the second while this node takes the answer to the
 * first (resolves its publishes, whose callers publish again): node and Redis overlap instead of
 * taking turns. Measured with broker-bench (64 publishers, docs/benchmarks.md): one run per turn
 * gave about 30,000 publications/s, two about 50,000, four about 47,000.
 */
export function batchItems(waiting: number): number {
  if (waiting < SPLIT_FROM) return MAX_BATCH_ITEMS;
  return Math.min(MAX_BATCH_ITEMS, Math.ceil(waiting / 2));
}

export class RedisPublisher {
  readonly #keys: RedisKeys;
  readonly #settings: BatchSettings;
  readonly #limits: PublishQueueLimits;
  readonly #runner: BatchRunner;
  #waiting: Waiting[] = [];
  #scheduled = false;
  /** Publications accepted and not answered yet: waiting for the turn to end, or in flight. */
  #pending = 0;
  /** Batches sent and not answered, oldest first (a Set keeps insertion order). */
  readonly #inFlight = new Set<Flight>();

  constructor(keys: RedisKeys, settings: BatchSettings, limits: PublishQueueLimits, runner: BatchRunner) {
    this.#keys = keys;
    this.#settings = settings;
    this.#limits = limits;
    this.#runner = runner;
  }

  /** Publications accepted and not answered yet. */
  get pending(): number {
    return this.#pending;
  }

  publish(draft: PublishDraft): Promise<PublishResult> {
    const now = Date.now();
    admitPublish(this.#limits, this.#pending, this.#inFlight.values().next().value?.sentAt, now);
    this.#pending++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return new Promise((resolve, reject) => this.#waiting.push({ draft, resolve, reject }));
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const waiting = this.#waiting;
    this.#waiting = [];
    const items = batchItems(waiting.length);
    let from = 0;
    while (from < waiting.length) {
      let to = from;
      let bytes = 0;
      while (to < waiting.length && to - from < items && (to === from || bytes < MAX_BATCH_BYTES)) {
        bytes += (waiting[to] as Waiting).draft.dataJson.length;
        to++;
      }
      this.#send(waiting.slice(from, to));
      from = to;
    }
  };

  #send(batch: readonly Waiting[]): void {
    const { size, ttlMs, metaTtlMs } = this.#settings;
    let run: string;
    try {
      // Read when the batch leaves: a reconnect since the publish may have reached another Redis.
      run = this.#runner.runMark();
    } catch (error) {
      this.#pending -= batch.length;
      for (const item of batch) item.reject(error);
      return;
    }
    const keys: string[] = [];
    const args: (string | number)[] = [size, ttlMs, metaTtlMs, run, newEpoch()];
    for (const { draft } of batch) {
      const channel = draft.channel;
      const key = draft.idempotencyKey;
      // The script puts offset and epoch right after the channel, as publicationJson would.
      const full = publicationJson(draft);
      const head = `{"channel":"${channel}"`;
      const meta = this.#keys.meta(channel);
      keys.push(meta, this.#keys.stream(channel), key === undefined ? meta : this.#keys.idempotency(channel, key));
      args.push(
        draft.ephemeral ? 'e' : 's',
        head,
        full.slice(head.length),
        draft.event ?? '',
        this.#keys.pubsub(channel),
        key === undefined ? 0 : IDEMPOTENCY_WINDOW_MS,
        draft.expectedTop?.offset ?? '',
        draft.expectedTop?.epoch ?? '',
      );
    }
    const flight: Flight = { sentAt: Date.now() };
    this.#inFlight.add(flight);
    const settle = (): void => {
      this.#inFlight.delete(flight);
      this.#pending -= batch.length;
    };
    this.#runner.run(keys, args).then(
      (reply) => {
        settle();
        const values = reply as (number | string)[];
        if (!Array.isArray(values) || values.length !== batch.length * 2) {
          const error = new Error('unexpected reply from the redis publish script');
          for (const item of batch) item.reject(error);
          return;
        }
        batch.forEach((item, i) => {
          if (values[i * 2] === 2) return item.reject(new TopConflictError(item.draft.channel));
          try {
            const record = decodeRecord(item.draft.channel, String(values[i * 2 + 1]));
            item.resolve({ record, duplicate: values[i * 2] === 1 });
          } catch (error) {
            item.reject(error);
          }
        });
      },
      (error: unknown) => {
        settle();
        for (const item of batch) item.reject(error);
      },
    );
  }
}
