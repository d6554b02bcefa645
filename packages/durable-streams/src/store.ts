/**
 * The stateful shell around the pure rules: streams as Herald channels plus a record in the
 * broker's metadata store, kept consistent across nodes without locks.
 *
 * Every write reads the record (brought up to date with the channel's log), decides (decide.ts),
 * and publishes with `expectedTop` = the top the decision saw. If any node wrote to the channel
 * meanwhile the broker refuses, and the write starts over from a fresh record: so a closed stream
 * never takes data, a producer sequence is applied once, and a deleted stream's late writers land
 * nowhere. The record is saved after each write by compare-and-set; a writer that died between
 * publishing and saving leaves the log ahead of the record, and the next `load` folds what is
 * missing (record.ts). One node runs one write per stream at a time, so its own writes never race.
 */
import type { Broker, Hub, MetadataStore, PublishDraft } from '@herald/server';
import { KeyedQueue, TopConflictError } from '@herald/server';
import type { Logger } from 'pino';
import { decideAppend, written } from './decide.js';
import { DsError, gone, notFound } from './errors.js';
import type { AppendRequest } from './headers.js';
import { dataJson, modeOf, parseBody, type Payload } from './payload.js';
import { EVENT, infoJson, parsePublication, type DsPublication, type Kind, type WriteInfo } from './publication.js';
import { decodeRecord, encodeRecord, fold, type StreamRecord } from './record.js';

export interface Loaded {
  readonly record: StreamRecord;
  readonly version: number;
  /** The broker lost the channel's log (a new epoch, or trimmed before it was folded): only DELETE works. */
  readonly lost: boolean;
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
}

/** Attempts of one operation under contention from other nodes before it answers 503. */
const MAX_ATTEMPTS = 50;
/** Publications folded per history read in `load`. */
const FOLD_PAGE = 500;

export class StreamStore {
  readonly hub: Hub;
  readonly broker: Broker;
  readonly metadata: MetadataStore;
  readonly logger: Logger;
  readonly #now: () => number;
  /** One write per stream at a time from this node. */
  readonly #queue = new KeyedQueue();
  /** Called for a stream deleted for good: forks.ts releases its source (set by the fork registry). */
  onHardDelete: (channel: string, record: StreamRecord) => Promise<void> = async () => undefined;
  /** Forks that still read a stream, checked when it is deleted (set by the fork registry). */
  liveForks: (channel: string, record: StreamRecord) => Promise<string[]> = async () => [];

  constructor(hub: Hub, logger: Logger, now: () => number = Date.now) {
    const metadata = hub.broker.metadata;
    if (metadata === undefined) throw new Error(`the ${hub.broker.name} broker has no metadata store`);
    this.hub = hub;
    this.broker = hub.broker;
    this.metadata = metadata;
    this.logger = logger;
    this.#now = now;
  }

  now(): number {
    return this.#now();
  }

  /**
   * The stream's record, up to date with its channel's log (and saved so); undefined when there is
   * no stream. A deletion found pending in the log is finished here, whoever started it.
   */
  async load(channel: string): Promise<Loaded | undefined> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await this.metadata.get(channel);
      if (entry === undefined) return undefined;
      const stored = decodeRecord(entry.value);
      const history = await this.broker.history(channel, {
        since: { offset: stored.top, epoch: stored.epoch },
        limit: FOLD_PAGE,
      });
      if (history.recovered === false) return { record: stored, version: entry.version, lost: true };
      let record = stored;
      for (const pub of history.publications) record = fold(record, parsePublication(pub));
      let version = entry.version;
      if (record.top !== stored.top) {
        const saved = await this.metadata.put(channel, encodeRecord(record), entry.version);
        if (saved === undefined || record.top < history.top.offset) continue;
        version = saved;
      }
      if (record.deletion === 'pending') {
        if (await this.#finishDeletion(channel, record, version)) return undefined;
        continue;
      }
      return { record, version, lost: false };
    }
    throw busy();
  }

  /** `load` that answers 404/410 for a stream that is missing, soft-deleted, lost or expired. */
  async existing(channel: string): Promise<Loaded> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const loaded = await this.load(channel);
      if (loaded === undefined) throw notFound();
      if (loaded.lost) throw lostStream();
      if (loaded.record.deletion === 'soft') throw gone('the stream was deleted; forks still read its data');
      if (!(await this.expireIfDue(channel, loaded))) return loaded;
    }
    throw busy();
  }

  /** POST: append and/or close (PROTOCOL.md 5.2, 5.3). */
  append(channel: string, request: AppendRequest, body: Buffer): Promise<Answer> {
    return this.serially(channel, async () => {
      let payload: Payload | undefined;
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const loaded = await this.existing(channel);
        const { record } = loaded;
        const verdict = decideAppend(record, request, body.length > 0);
        if (verdict.kind === 'answer') {
          await this.touch(channel, record);
          return { status: verdict.status, headers: verdict.headers };
        }
        payload ??= parseBody(modeOf(record.contentType), body, false);
        const write: WriteInfo = {
          ...(request.producer === undefined ? {} : { producer: request.producer }),
          ...(request.streamSeq === undefined ? {} : { streamSeq: request.streamSeq }),
          ...(verdict.closes ? { closes: true as const } : {}),
        };
        const kind: Kind = payload === undefined ? 'close' : 'append';
        const pub = await this.publish(channel, record, kind, payload, write);
        if (pub === undefined) continue;
        const next = fold(record, pub);
        await this.save(channel, next, loaded.version);
        await this.touch(channel, next);
        return written(next, request, payload !== undefined);
      }
      throw busy();
    });
  }

  /** DELETE (PROTOCOL.md 5.4): soft while forks read the stream, else for good. */
  delete(channel: string): Promise<void> {
    return this.serially(channel, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const loaded = await this.load(channel);
        if (loaded === undefined) throw notFound();
        if (loaded.record.deletion === 'soft') throw gone('the stream is already deleted; forks still read it');
        if (loaded.lost) {
          if (await this.drop(channel, loaded.record, loaded.version)) return;
          continue;
        }
        if (await this.#markDeleted(channel, loaded)) return;
      }
      throw busy();
    });
  }

  /**
   * Deletes a stream whose TTL or expiry time has passed; true when it did (the caller then
   * answers as for a missing stream). Lazy: a stream expires when a request finds it so.
   */
  async expireIfDue(channel: string, loaded: Loaded): Promise<boolean> {
    const { record } = loaded;
    const now = this.#now();
    let due = record.expiresAt !== undefined && now >= record.expiresAt;
    if (!due && record.ttl !== undefined) {
      const access = await this.metadata.get(accessKey(channel));
      const last = Math.max(record.createdAt, access === undefined ? 0 : Number(access.value));
      due = now >= last + record.ttl * 1000;
    }
    if (!due) return false;
    await this.#markDeleted(channel, loaded);
    return true;
  }

  /** A read or write resets a TTL stream's countdown (PROTOCOL.md 5.1); HEAD does not call this. */
  async touch(channel: string, record: StreamRecord): Promise<void> {
    if (record.ttl === undefined) return;
    await this.metadata.put(accessKey(channel), String(this.#now()));
  }

  /**
   * Publishes a write conditioned on the record's top; undefined when another write came first
   * (the caller loads again and decides again).
   */
  async publish(
    channel: string,
    record: Pick<StreamRecord, 'top' | 'epoch'>,
    kind: Kind,
    payload: Payload | undefined,
    write: WriteInfo,
  ): Promise<DsPublication | undefined> {
    const ts = this.#now();
    const draft: PublishDraft = {
      channel,
      dataJson: payload === undefined ? 'null' : dataJson(payload),
      event: EVENT[kind],
      infoJson: infoJson(write),
      ts,
      ephemeral: false,
      expectedTop: { offset: record.top, epoch: record.epoch },
    };
    let offset: number;
    try {
      offset = (await this.hub.publishDraft(draft)).record.offset;
    } catch (error) {
      if (error instanceof TopConflictError) return undefined;
      this.logger.warn({ err: error, channel }, 'durable streams: publish failed');
      throw new DsError(503, 'broker_unavailable', 'the broker did not take the write; nothing was written');
    }
    return { offset, kind, data: payload === undefined ? null : JSON.parse(draft.dataJson), write, ts };
  }

  /** Saves a record after a write; when someone saved meanwhile, `load` folds the write in instead. */
  async save(channel: string, record: StreamRecord, version: number): Promise<void> {
    if ((await this.metadata.put(channel, encodeRecord(record), version)) !== undefined) return;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const loaded = await this.load(channel);
      if (loaded === undefined || loaded.record.top >= record.top) return;
    }
    throw busy();
  }

  /** Runs `task` after this node's earlier writes to the channel. */
  serially<T>(channel: string, task: () => Promise<T>): Promise<T> {
    return this.#queue.run(channel, task);
  }

  /** Publishes `ds.delete` (so late writers fail) and finishes the deletion; false to try again. */
  async #markDeleted(channel: string, loaded: Loaded): Promise<boolean> {
    const pub = await this.publish(channel, loaded.record, 'delete', undefined, {});
    if (pub === undefined) return false;
    const record = fold(loaded.record, pub);
    const saved = await this.metadata.put(channel, encodeRecord(record), loaded.version);
    // Someone saved meanwhile: loading finds the deletion in the log and finishes it.
    if (saved === undefined) await this.load(channel);
    else await this.#finishDeletion(channel, record, saved);
    return true;
  }

  /**
   * A deletion in the log becomes final: soft while forks read the stream (they are checked to
   * exist), else the record goes. True when the record is gone.
   */
  async #finishDeletion(channel: string, record: StreamRecord, version: number): Promise<boolean> {
    const forks = await this.liveForks(channel, record);
    if (forks.length > 0) {
      await this.metadata.put(channel, encodeRecord({ ...record, deletion: 'soft', forks }), version);
      return false;
    }
    return this.drop(channel, record, version);
  }

  /** Deletes a stream's record for good (when still at `version`) and releases its source. */
  async drop(channel: string, record: StreamRecord, version: number): Promise<boolean> {
    if (!(await this.metadata.delete(channel, version))) return false;
    if (record.ttl !== undefined) await this.metadata.delete(accessKey(channel));
    await this.onHardDelete(channel, record);
    return true;
  }
}

/** Where a TTL stream's last access time lives: `#` is in no channel name, so no record collides. */
function accessKey(channel: string): string {
  return `${channel}#access`;
}

export function busy(): DsError {
  return new DsError(503, 'broker_unavailable', 'the stream is changing too fast to decide; try again');
}

export function lostStream(): DsError {
  return gone("the broker lost this stream's data (its channel started a new epoch); DELETE it to start again");
}
