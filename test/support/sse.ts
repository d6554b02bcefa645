/**
 * Test support for Server-Sent Events: a raw `text/event-stream` reader over fetch that keeps
 * what a browser's EventSource hides (which fields each event carried, comments, `retry:`), and a
 * thin wrapper around the `eventsource` package (a real, spec-following EventSource client).
 */
import { EventSource } from 'eventsource';

/** One dispatched event, with the fields exactly as the stream carried them. */
export interface SseEvent {
  /** The `id:` field, or undefined when the event had no `id:` line. */
  readonly id: string | undefined;
  /** The `event:` field, or undefined when the event had no `event:` line. */
  readonly event: string | undefined;
  readonly data: string;
}

export interface SseOpenOptions {
  readonly headers?: Record<string, string>;
}

/**
 * Reads one SSE response with fetch and parses it per the WHATWG event-stream rules
 * (lines end in LF, CR or CRLF; `:` starts a comment; an empty line dispatches).
 */
export class RawSse {
  readonly status: number;
  readonly headers: Headers;
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  readonly retries: number[] = [];
  /** The body of a non-200 answer (JSON errors come before any stream). */
  readonly body: string | undefined;
  /** Resolves when the response ends (the hub closed it, or `close()` was called). */
  readonly ended: Promise<void>;
  readonly #abort: AbortController;

  private constructor(response: Response, abort: AbortController, body: string | undefined) {
    this.status = response.status;
    this.headers = response.headers;
    this.body = body;
    this.#abort = abort;
    this.ended = response.ok && response.body !== null ? this.#read(response.body) : Promise.resolve();
  }

  static async open(url: string, options: SseOpenOptions = {}): Promise<RawSse> {
    const abort = new AbortController();
    const response = await fetch(url, {
      headers: { accept: 'text/event-stream', ...options.headers },
      signal: abort.signal,
    });
    const body = response.ok ? undefined : await response.text();
    return new RawSse(response, abort, body);
  }

  /** The JSON body of a refusal. */
  json(): any {
    return JSON.parse(this.body ?? 'null');
  }

  /** Events named `name` (undefined = events without an `event:` line), data parsed as JSON. */
  named(name: string | undefined): any[] {
    return this.events.filter((e) => e.event === name).map((e) => JSON.parse(e.data));
  }

  /** Publications: events that are not `herald.*` control events, data parsed. */
  publications(): any[] {
    return this.events.filter((e) => !e.event?.startsWith('herald.')).map((e) => JSON.parse(e.data));
  }

  close(): void {
    this.#abort.abort();
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    let id: string | undefined;
    let event: string | undefined;
    let data: string[] = [];
    const line = (text: string): void => {
      if (text === '') {
        if (data.length > 0 || id !== undefined || event !== undefined) {
          this.events.push({ id, event, data: data.join('\n') });
        }
        id = undefined;
        event = undefined;
        data = [];
        return;
      }
      if (text.startsWith(':')) {
        this.comments.push(text.slice(1).trimStart());
        return;
      }
      const colon = text.indexOf(':');
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? '' : text.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'retry' && /^\d+$/.test(value)) this.retries.push(Number(value));
    };
    const reader = body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let match: RegExpExecArray | null;
        while ((match = /\r\n|\r(?!$)|\n/.exec(buffer)) !== null) {
          line(buffer.slice(0, match.index));
          buffer = buffer.slice(match.index + match[0].length);
        }
      }
    } catch {
      // aborted or cut: the events read so far stay
    }
  }
}

export interface EventSourceClient {
  readonly source: EventSource;
  /** Publications delivered to `onmessage` (no `event:` line) and to named listeners, parsed. */
  readonly messages: any[];
  /** `herald.*` control events, parsed, in arrival order, with their type. */
  readonly control: Array<{ type: string; data: any; lastEventId: string }>;
  /** Count of `error` events (each one is a dropped connection or a refused reconnect). */
  errors: number;
  /** Count of `open` events. */
  opens: number;
}

/**
 * A real EventSource (the `eventsource` package). Headers go through its custom fetch, as a
 * browser would send cookies; Last-Event-ID is sent by the client itself on every reconnect.
 */
export function openEventSource(
  url: string,
  options: { headers?: Record<string, string>; events?: readonly string[] } = {},
): EventSourceClient {
  const headers = options.headers ?? {};
  const source = new EventSource(url, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
  });
  const client: EventSourceClient = { source, messages: [], control: [], errors: 0, opens: 0 };
  source.onmessage = (e) => client.messages.push(JSON.parse(e.data));
  source.onerror = () => client.errors++;
  source.onopen = () => client.opens++;
  for (const type of [
    'herald.connected',
    'herald.disconnect',
    'herald.join',
    'herald.leave',
    'herald.subscribed',
    'herald.unsub',
  ]) {
    source.addEventListener(type, (e) =>
      client.control.push({ type, data: JSON.parse(e.data), lastEventId: e.lastEventId }),
    );
  }
  for (const type of options.events ?? []) {
    source.addEventListener(type, (e) => client.messages.push(JSON.parse(e.data)));
  }
  return client;
}

/** The query string of an SSE or poll request. */
export function streamQuery(channels: readonly string[], extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const channel of channels) params.append('channel', channel);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return params.toString();
}
