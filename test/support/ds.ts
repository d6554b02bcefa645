/**
 * Test support for Durable Streams: a real hub with /ds/ attached, plain fetch requests, and an
 * SSE reader over fetch that parses the protocol's `data` and `control` events.
 */
import { attachDurableStreams, type DurableStreamsOptions } from '@herald/durable-streams';
import type { HeraldOptions } from '@herald/server';
import { API_KEY, startHub, type TestHub } from './hub.ts';

export async function startDsHub(
  options: Partial<HeraldOptions> = {},
  ds: DurableStreamsOptions = {},
): Promise<TestHub> {
  const hub = await startHub(options);
  attachDurableStreams(hub.server, { longPollSeconds: 1, ...ds });
  return hub;
}

export interface DsAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export interface DsRequest {
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array<ArrayBuffer>;
  /** `Authorization: Bearer`; the API key unless given (null: none). */
  readonly bearer?: string | null;
}

/** One request to `/ds/<path>`; `path` may carry a query. */
export async function ds(base: string, method: string, path: string, request: DsRequest = {}): Promise<DsAnswer> {
  const bearer = request.bearer === undefined ? API_KEY : request.bearer;
  const response = await fetch(`${base}/ds/${path}`, {
    method,
    headers: { ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }), ...request.headers },
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  return { status: response.status, headers: response.headers, text: method === 'HEAD' ? '' : await response.text() };
}

export interface SseEvent {
  readonly type: string;
  readonly data: string;
}

/**
 * Reads `url` as SSE until `done` says so (given the events so far) or the stream ends; aborts
 * after `timeoutMs` and returns what came.
 */
export async function readSse(
  url: string,
  done: (events: readonly SseEvent[]) => boolean,
  options: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; headers: Headers; events: SseEvent[] }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 5000);
  const events: SseEvent[] = [];
  try {
    const response = await fetch(url, { headers: options.headers ?? {}, signal: controller.signal });
    if (response.body === null) return { status: response.status, headers: response.headers, events };
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          const type = lines
            .find((l) => l.startsWith('event:'))
            ?.slice(6)
            .trim();
          if (type === undefined) continue;
          const data = lines
            .filter((l) => l.startsWith('data:'))
            .map((l) => (l.startsWith('data: ') ? l.slice(6) : l.slice(5)))
            .join('\n');
          events.push({ type, data });
        }
        if (done(events)) break;
      }
    } catch (error) {
      if (!(error instanceof Error && error.name === 'AbortError')) throw error;
    }
    controller.abort();
    return { status: response.status, headers: response.headers, events };
  } finally {
    clearTimeout(timer);
  }
}

/** The control events' parsed payloads. */
export function controls(events: readonly SseEvent[]): Array<Record<string, unknown>> {
  return events.filter((e) => e.type === 'control').map((e) => JSON.parse(e.data) as Record<string, unknown>);
}
