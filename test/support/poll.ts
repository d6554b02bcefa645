/** Test support for long-polling: one poll request, and a resuming poll loop like a real client's. */
import { streamQuery } from './sse.ts';

export interface PollAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any;
}

export interface PollRequest {
  readonly channels: readonly string[];
  readonly token?: string;
  readonly cursor?: string;
  /** Seconds; the hub's default is 25. */
  readonly timeout?: number;
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal;
}

export async function poll(baseUrl: string, request: PollRequest): Promise<PollAnswer> {
  const extra: Record<string, string> = {};
  if (request.token !== undefined) extra.token = request.token;
  if (request.cursor !== undefined) extra.cursor = request.cursor;
  if (request.timeout !== undefined) extra.timeout = String(request.timeout);
  const response = await fetch(`${baseUrl}/poll?${streamQuery(request.channels, extra)}`, {
    ...(request.headers === undefined ? {} : { headers: request.headers }),
    ...(request.signal === undefined ? {} : { signal: request.signal }),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body };
}

/**
 * Polls in a loop from a cursor, as a client library would: every answer's cursor feeds the next
 * request; a failed request (a cut connection) is retried with the same cursor.
 */
export class PollLoop {
  readonly publications: any[] = [];
  readonly answers: any[] = [];
  failures = 0;
  cursor: string | undefined;
  #stopped = false;
  readonly #abort = new AbortController();
  readonly done: Promise<void>;

  constructor(
    readonly baseUrl: () => string,
    readonly request: Omit<PollRequest, 'cursor' | 'signal'>,
    cursor?: string,
    /** Bounds the loop whatever happens. */
    readonly maxRequests = 10_000,
  ) {
    this.cursor = cursor;
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    for (let i = 0; i < this.maxRequests && !this.#stopped; i++) {
      try {
        const answer = await poll(this.baseUrl(), {
          ...this.request,
          ...(this.cursor === undefined ? {} : { cursor: this.cursor }),
          signal: this.#abort.signal,
        });
        if (answer.status !== 200) throw new Error(`poll answered ${answer.status} ${JSON.stringify(answer.body)}`);
        this.answers.push(answer.body);
        this.publications.push(...answer.body.publications);
        this.cursor = answer.body.cursor;
      } catch (error) {
        if (this.#stopped) return;
        if (error instanceof Error && error.message.startsWith('poll answered')) throw error;
        this.failures++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    return this.done;
  }
}
