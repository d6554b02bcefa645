/**
 * PUT (PROTOCOL.md 5.1 and 4.2): create a stream, or a fork of one, or confirm one that exists
 * with the same configuration. A stream starts with exactly one `ds.create` publication holding
 * its configuration and initial content (a fork's inherited sub-offset prefix, then the body), so
 * creation is one compare-and-append like every write. The record is written after it; a node
 * that finds the publication without a record (its creator died in between) adopts it.
 */
import type { PublicationRecord } from '@herald/server';
import { DsError, notFound } from './errors.js';
import { DEFAULT_CONTENT_TYPE, mediaType, type CreateRequest } from './headers.js';
import { asForkError, inheritedUpTo, type ForkRegistry } from './forks.js';
import { concat, modeOf, parseBody, prefixOf, sizeOf, type Payload } from './payload.js';
import { parsePublication, type StreamConfig } from './publication.js';
import { readStream } from './reader.js';
import { createdRecord, decodeRecord, encodeRecord, fold, type StreamRecord } from './record.js';
import { busy, lostStream, type StreamStore } from './store.js';

export interface CreateOutcome {
  readonly created: boolean;
  readonly record: StreamRecord;
}

/** What a PUT asks for, with a fork's defaults and inheritance resolved. */
interface Wanted {
  readonly config: StreamConfig;
  readonly closed: boolean;
  readonly prefix?: Payload;
}

/** Publications scanned back from a channel's top for a creation to adopt. */
const ADOPT_WINDOW = 16;
const MAX_ATTEMPTS = 50;

export async function createStream(
  store: StreamStore,
  forks: ForkRegistry,
  channel: string,
  request: CreateRequest,
  body: Buffer,
  /** The source's channel for a fork request (already permission-checked), else undefined. */
  sourceChannel: string | undefined,
): Promise<CreateOutcome> {
  return store.serially(channel, async () => {
    let wanted: Wanted | undefined;
    let mine: { offset: number; epoch: string } | undefined;
    let registered = false;
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const loaded = await store.load(channel);
        if (loaded !== undefined) {
          const { record } = loaded;
          if (loaded.lost) throw lostStream();
          if (record.deletion === 'soft') {
            throw new DsError(409, 'conflict', 'a deleted stream whose forks still read it holds this path');
          }
          if (await store.expireIfDue(channel, loaded)) continue;
          if (mine !== undefined && record.created === mine.offset && record.epoch === mine.epoch) {
            return { created: true, record };
          }
          wanted ??= await resolve(store, request, sourceChannel);
          if (!sameConfig(record, wanted)) {
            throw new DsError(409, 'conflict', 'a stream with another configuration exists at this path');
          }
          return { created: false, record };
        }
        wanted ??= await resolve(store, request, sourceChannel);
        const recent = await store.broker.history(channel, { limit: ADOPT_WINDOW });
        if (await adopt(store, channel, recent.publications, recent.top.epoch)) continue;
        if (sourceChannel !== undefined && !registered) {
          await forks.add(sourceChannel, channel).catch((error: unknown) => Promise.reject(asForkError(error)));
          registered = true;
        }
        const content = concat(wanted.prefix, parseBody(modeOf(wanted.config.contentType), body, true));
        const write = { config: wanted.config, ...(wanted.closed ? { closes: true as const } : {}) };
        const pub = await store.publish(
          channel,
          { top: recent.top.offset, epoch: recent.top.epoch },
          'create',
          content,
          write,
        );
        if (pub === undefined) continue;
        mine = { offset: pub.offset, epoch: recent.top.epoch };
        const record = createdRecord(wanted.config, pub, recent.top.epoch);
        if ((await store.metadata.put(channel, encodeRecord(record), 0)) !== undefined) {
          await store.touch(channel, record);
          return { created: true, record };
        }
      }
      throw busy();
    } catch (error) {
      if (registered && sourceChannel !== undefined) await releaseIfNotOurs(store, forks, channel, sourceChannel);
      throw error;
    }
  });
}

/**
 * The stream's configuration as the request asks for it. A fork resolves its source now: the
 * source must exist (404) and not be deleted (409), the content type must be the source's (409),
 * the offset within the source (400), and a sub-offset within the next append (400).
 */
async function resolve(store: StreamStore, request: CreateRequest, sourceChannel: string | undefined): Promise<Wanted> {
  const base = {
    ...(request.ttl === undefined ? {} : { ttl: request.ttl }),
    ...(request.expiresAt === undefined ? {} : { expiresAt: request.expiresAt }),
  };
  const fork = request.fork;
  if (fork === undefined || sourceChannel === undefined) {
    return {
      config: { contentType: request.contentType ?? DEFAULT_CONTENT_TYPE, ...base, start: 0, inherited: [] },
      closed: request.closed,
    };
  }
  let source: StreamRecord;
  try {
    source = (await store.existing(sourceChannel)).record;
  } catch (error) {
    if (error instanceof DsError && error.status === 404) throw notFound('the source stream does not exist');
    throw asForkError(error);
  }
  const contentType = request.contentType ?? source.contentType;
  if (mediaType(contentType) !== mediaType(source.contentType)) {
    throw new DsError(409, 'conflict', `a fork has its source's content type, ${source.contentType}`);
  }
  const offset = fork.offset ?? source.tail;
  if (offset > source.tail) throw new DsError(400, 'bad_request', "Stream-Fork-Offset is past the source's tail");
  let prefix: Payload | undefined;
  if (fork.subOffset > 0) {
    const next = (await readStream(store.broker, sourceChannel, source, offset, { maxBytes: 1, page: 64 })).chunks[0];
    if (next === undefined || sizeOf(next.payload) < fork.subOffset) {
      throw new DsError(400, 'bad_request', 'Stream-Fork-Sub-Offset reaches past the next append of the source');
    }
    prefix = prefixOf(next.payload, fork.subOffset);
  }
  // No expiry of its own: the fork takes its source's TTL or expiry time (PROTOCOL.md 4.2).
  const expiry = request.ttl !== undefined || request.expiresAt !== undefined ? base : inheritedExpiry(source);
  return {
    config: {
      contentType,
      ...expiry,
      start: offset,
      inherited: inheritedUpTo(source, sourceChannel, offset),
      fork: { source: sourceChannel, offset, subOffset: fork.subOffset },
    },
    closed: request.closed,
    ...(prefix === undefined ? {} : { prefix }),
  };
}

function inheritedExpiry(source: StreamRecord): { ttl?: number; expiresAt?: number } {
  if (source.ttl !== undefined) return { ttl: source.ttl };
  if (source.expiresAt !== undefined) return { expiresAt: source.expiresAt };
  return {};
}

/** Whether an existing stream is what the PUT asks for (content type, expiry, closure, fork). */
function sameConfig(record: StreamRecord, wanted: Wanted): boolean {
  const { config } = wanted;
  return (
    mediaType(record.contentType) === mediaType(config.contentType) &&
    record.ttl === config.ttl &&
    record.expiresAt === config.expiresAt &&
    record.closed === wanted.closed &&
    record.fork?.source === config.fork?.source &&
    record.fork?.offset === config.fork?.offset &&
    (record.fork?.subOffset ?? 0) === (config.fork?.subOffset ?? 0)
  );
}

/**
 * A `ds.create` at the top of a channel without a record: its creator died before saving it, or
 * is about to. Adopting it (saving the record it implies) is the same either way; true when a
 * record was saved, so the caller loads again.
 */
async function adopt(
  store: StreamStore,
  channel: string,
  recent: readonly PublicationRecord[],
  epoch: string,
): Promise<boolean> {
  const pubs = recent.map(parsePublication);
  let index = pubs.length - 1;
  while (index >= 0 && pubs[index]?.kind === undefined) index--;
  const created = pubs[index];
  if (created?.kind !== 'create' || created.write.config === undefined) return false;
  let record = createdRecord(created.write.config, created, epoch);
  for (const pub of pubs.slice(index + 1)) record = fold(record, pub);
  return (await store.metadata.put(channel, encodeRecord(record), 0)) !== undefined;
}

/** Undoes a fork registration unless the stream now at the path is that fork. */
async function releaseIfNotOurs(
  store: StreamStore,
  forks: ForkRegistry,
  channel: string,
  sourceChannel: string,
): Promise<void> {
  const existing = await store.metadata.get(channel).catch(() => undefined);
  if (existing !== undefined && decodeRecord(existing.value).fork?.source === sourceChannel) return;
  await forks.remove(sourceChannel, channel).catch(() => undefined);
}
