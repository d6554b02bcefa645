/**
 * Creates (or adopts) the JetStream stream and KV buckets a namespace needs. Nodes run this at
 * start and after every reconnect, since a NATS server that lost its storage comes back without
 * them. Nodes of one deployment share the settings; a node started with other limits updates
 * the stream to its own (and says so).
 */
import { IDEMPOTENCY_WINDOW_MS } from '@herald/server';
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  nanos,
  type JetStreamClient,
  type JetStreamManager,
  type KV,
  type StreamConfig,
} from 'nats';
import type { Logger } from 'pino';
import type { NatsNames } from './names.js';

export interface StorageSettings {
  readonly storage: 'file' | 'memory';
  readonly replicas: number;
}

export interface HistorySettings extends StorageSettings {
  readonly size: number;
  /** Seconds a channel's last message (its offset and epoch) outlives an idle period. */
  readonly metaTtlSeconds: number;
}

/** Room between the epoch KV expiring and the stream's last message expiring (see epochs). */
const EPOCH_MARGIN_S = 60;
const STREAM_NAME_IN_USE = 10058;

export async function ensureHistoryStream(
  jsm: JetStreamManager,
  names: NatsNames,
  settings: HistorySettings,
  logger: Logger,
): Promise<void> {
  const config: Partial<StreamConfig> & { name: string } = {
    name: names.stream,
    subjects: [names.historySubjects()],
    retention: RetentionPolicy.Limits,
    storage: settings.storage === 'file' ? StorageType.File : StorageType.Memory,
    num_replicas: settings.replicas,
    discard: DiscardPolicy.Old,
    // At least one message per channel stays: it carries the channel's offset and epoch.
    max_msgs_per_subject: Math.max(1, settings.size),
    // Age trimming by the ttl happens on read; physically a channel's messages stay this long.
    max_age: nanos((settings.metaTtlSeconds + EPOCH_MARGIN_S) * 1000),
    duplicate_window: nanos(IDEMPOTENCY_WINDOW_MS),
    // Stored messages go out to the nodes in store order: storing and fan-out are one step.
    republish: { src: names.historySubjects(), dest: names.fanoutSubjects() },
    allow_direct: true,
  };
  try {
    await jsm.streams.add(config);
  } catch (error) {
    if (apiErrorCode(error) !== STREAM_NAME_IN_USE) throw error;
    logger.warn({ stream: names.stream }, 'nats history stream had other settings; updating it to this node’s');
    await jsm.streams.update(names.stream, config);
  }
}

export async function ensureKv(
  js: JetStreamClient,
  jsm: JetStreamManager,
  bucket: string,
  ttlMs: number,
  settings: StorageSettings,
): Promise<KV> {
  const kv = await js.views.kv(bucket, {
    history: 1,
    ttl: ttlMs,
    storage: settings.storage === 'file' ? StorageType.File : StorageType.Memory,
    replicas: settings.replicas,
  });
  const status = await kv.status();
  if (status.ttl !== ttlMs) {
    const stream = `KV_${bucket}`;
    const info = await jsm.streams.info(stream);
    const window = Math.min(info.config.duplicate_window, nanos(ttlMs));
    await jsm.streams.update(stream, { ...info.config, max_age: nanos(ttlMs), duplicate_window: window });
  }
  return kv;
}

export function apiErrorCode(error: unknown): number | undefined {
  const api = (error as { api_error?: { err_code?: unknown } } | null)?.api_error;
  return typeof api?.err_code === 'number' ? api.err_code : undefined;
}

/** Whether a JetStream read found nothing (no message for that subject or sequence). */
export function isNotFound(error: unknown): boolean {
  return apiErrorCode(error) === 10037 || String((error as { code?: unknown } | null)?.code) === '404';
}

/** JetStream's "wrong last sequence": a conditional write lost the race for its key or subject. */
export const WRONG_LAST_SEQUENCE = 10071;

/** Whether a publish lost the race for the channel's next offset. */
export function isWrongLastSequence(error: unknown): boolean {
  return apiErrorCode(error) === WRONG_LAST_SEQUENCE;
}
