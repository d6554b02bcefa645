/**
 * Compare-and-set on one NATS JetStream KV key: what stands in for Redis scripts and counters,
 * which KV does not have. A change is a pure function of the current value, applied to what was
 * read and written only if nobody wrote the key meanwhile; on a conflict it is read and applied
 * again.
 */
import type { KV } from 'nats';

const MAX_ATTEMPTS = 50;

/** KV keys allow `[-/_=.a-zA-Z0-9]`: anything else is base64url-encoded (`=` for the empty string). */
export const kvSegment = (text: string): string =>
  text === '' ? '=' : Buffer.from(text, 'utf8').toString('base64url');

export const jsonBytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

/** The key's JSON value; undefined when absent or deleted. */
export async function kvJson<T>(kv: KV, key: string): Promise<T | undefined> {
  const entry = await kv.get(key);
  return entry === null || entry.operation !== 'PUT' ? undefined : entry.json<T>();
}

/**
 * Applies `change` (undefined = absent: returning it deletes the key; returning the same value
 * writes nothing) until the write lands. Returns the value it replaced and the one written.
 */
export async function kvUpdate<T>(
  kv: KV,
  key: string,
  change: (current: T | undefined) => T | undefined,
): Promise<{ before: T | undefined; after: T | undefined }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const entry = await kv.get(key);
    const live = entry !== null && entry.operation === 'PUT';
    const before = live ? entry.json<T>() : undefined;
    const after = change(before);
    try {
      if (after === before) return { before, after };
      if (after === undefined) {
        if (live) await kv.delete(key, { previousSeq: entry.revision });
      } else if (entry === null) {
        await kv.create(key, jsonBytes(after));
      } else {
        await kv.update(key, jsonBytes(after), entry.revision);
      }
      return { before, after };
    } catch (error) {
      if (!isKvConflict(error)) throw error;
    }
    // Contenders retried in lockstep would collide again: spread them out a little.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(attempt + 1, 10)));
  }
  throw new Error(`NATS KV key ${key} kept changing: gave up after ${MAX_ATTEMPTS} attempts`);
}

/** A create on an existing key, or an update/delete whose expected revision is no longer the last. */
export function isKvConflict(error: unknown): boolean {
  const e = error as { message?: string; api_error?: { err_code?: number } };
  return e.api_error?.err_code === 10071 || /wrong last sequence|key exists/i.test(e.message ?? '');
}
