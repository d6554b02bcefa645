/**
 * `createResumableStreamContext` with the interface of Vercel's `resumable-stream` (what
 * `useChat({ resume: true })` apps call in their POST and GET routes), keeping each stream in
 * Herald's Durable Streams (`/ds/<keyPrefix>/<streamId>`) instead of a producer's memory:
 *
 * - the producer appends its chunks as it passes them on (a few per append while one is in
 *   flight), with an idempotent producer tuple, so a retried append lands once;
 * - a resumer on any app instance, talking to any Herald node, reads the stream from its start
 *   and follows it live until the producer closes it: after a reload, after the producer's app
 *   instance died, after the Herald node it wrote to died.
 *
 * Differences from the original, all additive: the chunks outlive the producer's process (a
 * resumer of a producer that died gets what was written, then waits until the stream's TTL ends
 * it); `createNewResumableStream` on an id whose stream is still running resumes it instead of
 * writing into it a second time.
 */
import { StreamsClient, type Fetch, type Producer } from './client.js';

export interface CreateResumableStreamContextOptions {
  /** Herald's base URL (any node of the deployment), e.g. `http://herald:8080`. */
  readonly url: string;
  /** The hub's API key, or a client JWT whose `channels` and `publish` patterns cover `ds:<keyPrefix>/*`. */
  readonly token?: string;
  /** Keeps the process alive until the producer has written everything (Vercel's `after`); null on a server. */
  readonly waitUntil: ((promise: Promise<unknown>) => void) | null;
  /** Streams live at `<mount>/<keyPrefix>/<streamId>`. Default `resumable-stream`. */
  readonly keyPrefix?: string;
  /** Where the hub serves Durable Streams. Default `/ds`. */
  readonly mount?: string;
  /** Seconds a stream lives after its last read or write. Default 86400 (the original's 24 hours). */
  readonly ttlSeconds?: number;
  readonly fetch?: Fetch;
}

/** The interface of `resumable-stream`'s context (its `ResumableStreamContext`). */
export interface ResumableStreamContext {
  resumableStream(
    streamId: string,
    makeStream: () => ReadableStream<string>,
    skipCharacters?: number,
  ): Promise<ReadableStream<string> | null>;
  resumeExistingStream(streamId: string, skipCharacters?: number): Promise<ReadableStream<string> | null | undefined>;
  createNewResumableStream(
    streamId: string,
    makeStream: () => ReadableStream<string>,
    skipCharacters?: number,
  ): Promise<ReadableStream<string> | null>;
  hasExistingStream(streamId: string): Promise<null | true | 'DONE'>;
}

export function createResumableStreamContext(options: CreateResumableStreamContextOptions): ResumableStreamContext {
  const client = new StreamsClient({
    url: options.url,
    mount: options.mount ?? '/ds',
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  const prefix = options.keyPrefix ?? 'resumable-stream';
  const ttl = options.ttlSeconds ?? 86_400;
  const waitUntil = options.waitUntil ?? ((promise: Promise<unknown>) => void promise.catch(() => undefined));
  const pathOf = (streamId: string): string => `${prefix}/${streamId}`;

  const produce = (streamId: string, makeStream: () => ReadableStream<string>): ReadableStream<string> => {
    const path = pathOf(streamId);
    const writer = new ChunkWriter(client, path, { id: crypto.randomUUID(), epoch: 0 });
    let deliver = true;
    let finish!: () => void;
    waitUntil(new Promise<void>((resolve) => (finish = resolve)));
    return new ReadableStream<string>({
      start(controller) {
        const reader = makeStream().getReader();
        // The producer always finishes and writes everything, whether or not its own reader stays.
        void (async () => {
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              writer.write(value);
              if (deliver) controller.enqueue(value);
            }
            await writer.close();
            if (deliver) controller.close();
          } catch (error) {
            await writer.close().catch(() => undefined);
            if (deliver) controller.error(error);
          } finally {
            finish();
          }
        })();
      },
      cancel() {
        deliver = false;
      },
    });
  };

  const resume = (streamId: string, skipCharacters = 0): ReadableStream<string> => {
    const abort = new AbortController();
    const chunks = client.follow(pathOf(streamId), abort.signal);
    let skip = skipCharacters;
    return new ReadableStream<string>({
      async pull(controller) {
        for (;;) {
          const next = await chunks.next();
          if (next.done) return controller.close();
          let chunk = next.value;
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            skip -= dropped;
            chunk = chunk.slice(dropped);
          }
          if (chunk !== '') return controller.enqueue(chunk);
        }
      },
      async cancel() {
        abort.abort();
        await chunks.return(undefined);
      },
    });
  };

  return {
    async createNewResumableStream(streamId, makeStream) {
      const { created, closed } = await client.create(pathOf(streamId), ttl);
      if (created) return produce(streamId, makeStream);
      return closed ? null : resume(streamId);
    },
    async resumeExistingStream(streamId, skipCharacters) {
      const state = await client.state(pathOf(streamId));
      if (state === 'missing') return undefined;
      return state === 'closed' ? null : resume(streamId, skipCharacters);
    },
    async resumableStream(streamId, makeStream, skipCharacters) {
      const { created, closed } = await client.create(pathOf(streamId), ttl);
      if (created) return produce(streamId, makeStream);
      return closed ? null : resume(streamId, skipCharacters);
    },
    async hasExistingStream(streamId) {
      const state = await client.state(pathOf(streamId));
      return state === 'missing' ? null : state === 'closed' ? 'DONE' : true;
    },
  };
}

/**
 * A producer's appends: one in flight at a time; chunks that come meanwhile go together in the
 * next one (so a fast model costs one append per round trip, not one per token). Each append
 * has the next producer sequence number.
 */
class ChunkWriter {
  readonly #client: StreamsClient;
  readonly #path: string;
  readonly #producer: Producer;
  #pending: string[] = [];
  #seq = 0;
  #flushing: Promise<void> | undefined;
  #failed: unknown;

  constructor(client: StreamsClient, path: string, producer: Producer) {
    this.#client = client;
    this.#path = path;
    this.#producer = producer;
  }

  write(chunk: string): void {
    this.#pending.push(chunk);
    this.#flushing ??= this.#flush(false);
  }

  /** Writes what is left and closes the stream. */
  async close(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
    if (this.#failed !== undefined) throw this.#failed;
    const rest = this.#pending;
    this.#pending = [];
    await this.#client.append(this.#path, rest, this.#producer, this.#seq++, true);
  }

  async #flush(close: boolean): Promise<void> {
    try {
      while (this.#pending.length > 0 && this.#failed === undefined) {
        const batch = this.#pending;
        this.#pending = [];
        await this.#client.append(this.#path, batch, this.#producer, this.#seq++, close);
      }
    } catch (error) {
      this.#failed = error;
    } finally {
      this.#flushing = undefined;
    }
  }
}
