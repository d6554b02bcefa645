/**
 * The few Durable Streams requests a resumable stream needs (PROTOCOL.md of durable-streams), on
 * Web-standard fetch so it runs in Node and on edge runtimes. Streams are JSON streams whose
 * messages are the producer's string chunks: chunk boundaries and every character survive as
 * they are (an SSE text stream would turn CR LF into LF).
 */

export type Fetch = typeof fetch;

export interface StreamsClientOptions {
  /** Herald's base URL (any node), e.g. `http://herald:8080`. */
  readonly url: string;
  /** `Authorization: Bearer`: the hub's API key, or a client JWT allowed to read and write the streams. */
  readonly token?: string;
  readonly mount: string;
  readonly fetch: Fetch;
}

export interface Producer {
  readonly id: string;
  readonly epoch: number;
}

/** Attempts of one append across network errors and 5xx/429 answers (the producer tuple makes retries safe). */
const MAX_ATTEMPTS = 8;

export class StreamsClient {
  readonly #options: StreamsClientOptions;

  constructor(options: StreamsClientOptions) {
    this.#options = options;
  }

  url(path: string): string {
    return `${this.#options.url.replace(/\/+$/, '')}${this.#options.mount}/${path.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** PUT: true when this call created the stream, false when it existed; `closed` as it is now. */
  async create(path: string, ttlSeconds: number): Promise<{ created: boolean; closed: boolean }> {
    const response = await this.#request(path, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', 'Stream-TTL': String(ttlSeconds) },
    });
    if (response.status === 201 || response.status === 200) {
      return { created: response.status === 201, closed: response.headers.get('Stream-Closed') === 'true' };
    }
    // 409: a stream with other settings (or a closed one, which a create without Stream-Closed conflicts with).
    if (response.status === 409) return { created: false, closed: (await this.state(path)) === 'closed' };
    throw await failure('create', response);
  }

  async state(path: string): Promise<'missing' | 'open' | 'closed'> {
    const response = await this.#request(path, { method: 'HEAD' });
    if (response.status === 404 || response.status === 410) return 'missing';
    if (!response.ok) throw await failure('check', response);
    return response.headers.get('Stream-Closed') === 'true' ? 'closed' : 'open';
  }

  /** Appends `chunks` (and closes the stream with them when `close`), exactly once however often it retries. */
  async append(
    path: string,
    chunks: readonly string[],
    producer: Producer,
    seq: number,
    close: boolean,
  ): Promise<void> {
    const headers: Record<string, string> = {
      'Producer-Id': producer.id,
      'Producer-Epoch': String(producer.epoch),
      'Producer-Seq': String(seq),
      ...(close ? { 'Stream-Closed': 'true' } : {}),
      ...(chunks.length > 0 ? { 'Content-Type': 'application/json' } : {}),
    };
    const body = chunks.length > 0 ? JSON.stringify(chunks) : undefined;
    for (let attempt = 1; ; attempt++) {
      let response: Response | undefined;
      try {
        response = await this.#request(path, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS) throw error;
      }
      if (response !== undefined) {
        if (response.ok) return;
        const retry = response.status >= 500 || response.status === 429;
        if (!retry || attempt >= MAX_ATTEMPTS) throw await failure('append', response);
        await response.body?.cancel();
      }
      await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * 2 ** attempt)));
    }
  }

  /**
   * The stream's chunks from the start, live, until it closes (or is gone). Reconnects from the
   * last offset it was given when a connection ends early, so nothing is missed or repeated.
   */
  async *follow(path: string, signal: AbortSignal): AsyncGenerator<string> {
    let offset = '-1';
    let failures = 0;
    while (!signal.aborted) {
      let response: Response;
      try {
        const query = `?offset=${encodeURIComponent(offset)}&live=sse`;
        response = await this.#request(path, { method: 'GET', signal }, query);
      } catch (error) {
        if (signal.aborted || ++failures > MAX_ATTEMPTS) throw error;
        await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * 2 ** failures)));
        continue;
      }
      if (response.status === 404 || response.status === 410) return;
      if (!response.ok || response.body === null) throw await failure('read', response);
      failures = 0;
      try {
        for await (const event of sseEvents(response.body)) {
          if (event.type === 'data') {
            for (const chunk of JSON.parse(event.data) as unknown[]) if (typeof chunk === 'string') yield chunk;
          } else if (event.type === 'control') {
            const control = JSON.parse(event.data) as { streamNextOffset?: string; streamClosed?: boolean };
            if (control.streamNextOffset !== undefined) offset = control.streamNextOffset;
            if (control.streamClosed === true) return;
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        if (++failures > MAX_ATTEMPTS) throw error;
      }
    }
  }

  #request(path: string, init: RequestInit, query = ''): Promise<Response> {
    const token = this.#options.token;
    const headers = {
      ...(init.headers as Record<string, string>),
      ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
    };
    return this.#options.fetch(this.url(path) + query, { ...init, headers });
  }
}

/** Server-Sent Events of a response body: `event:` and joined `data:` lines per event. */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ type: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let type = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) type = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
        if (data.length > 0) yield { type, data: data.join('\n') };
      }
    }
  } finally {
    // Ends the response too when the caller stopped early (the live read is given up).
    await reader.cancel().catch(() => undefined);
  }
}

async function failure(what: string, response: Response): Promise<Error> {
  const text = await response.text().catch(() => '');
  return new Error(`Herald refused the ${what} (${response.status}): ${text.slice(0, 200)}`);
}
