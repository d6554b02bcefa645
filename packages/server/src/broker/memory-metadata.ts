/**
 * The embedded broker's metadata store: a map in this process, as lasting as the memory broker's
 * history (both go with the process).
 */
import type { MetadataEntry, MetadataStore } from './broker.js';

export class MemoryMetadata implements MetadataStore {
  readonly #entries = new Map<string, MetadataEntry>();
  /** One counter for every key, so a version never comes back after a delete (no ABA). */
  #version = 0;

  async get(key: string): Promise<MetadataEntry | undefined> {
    return this.#entries.get(key);
  }

  async put(key: string, value: string, expected?: number): Promise<number | undefined> {
    if (expected !== undefined && (this.#entries.get(key)?.version ?? 0) !== expected) return undefined;
    const version = ++this.#version;
    this.#entries.set(key, { value, version });
    return version;
  }

  async delete(key: string, expected?: number): Promise<boolean> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    if (expected !== undefined && entry.version !== expected) return false;
    this.#entries.delete(key);
    return true;
  }
}
