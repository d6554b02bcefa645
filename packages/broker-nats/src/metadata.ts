/**
 * The metadata store on NATS: a JetStream KV bucket (`<ns>_meta`, names.ts), keys as base64url
 * tokens. A KV revision is the bucket stream's sequence, so versions never repeat, even for a key
 * deleted and written again; compare-and-set is JetStream's expected last subject sequence.
 */
import type { MetadataEntry, MetadataStore } from '@herald/server';
import type { KV } from 'nats';
import { token } from './names.js';
import { isWrongLastSequence } from './setup.js';

export class NatsMetadata implements MetadataStore {
  readonly #kv: () => KV;

  /** `kv` answers the bucket of the current connection (it is set up again after a reconnect). */
  constructor(kv: () => KV) {
    this.#kv = kv;
  }

  async get(key: string): Promise<MetadataEntry | undefined> {
    const entry = await this.#kv().get(token(key));
    if (entry === null || entry.operation !== 'PUT') return undefined;
    return { value: entry.string(), version: entry.revision };
  }

  async put(key: string, value: string, expected?: number): Promise<number | undefined> {
    const kv = this.#kv();
    try {
      if (expected === undefined) return await kv.put(token(key), value);
      // `create` also writes over a deleted key (its tombstone), which `update` would not.
      if (expected === 0) return await kv.create(token(key), value);
      return await kv.update(token(key), value, expected);
    } catch (error) {
      if (isWrongLastSequence(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string, expected?: number): Promise<boolean> {
    const kv = this.#kv();
    const current = await this.get(key);
    if (current === undefined || (expected !== undefined && current.version !== expected)) return false;
    try {
      await kv.delete(token(key), { previousSeq: current.version });
      return true;
    } catch (error) {
      if (isWrongLastSequence(error)) return false;
      throw error;
    }
  }
}
