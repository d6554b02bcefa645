/**
 * Bodies and SSE events of reads (PROTOCOL.md 5.6, 5.8, 9.1). Pure: the same chunks render the
 * same bytes, which is what ETags and the SSE tests rely on.
 */
import type { Mode, Payload } from './payload.js';
import type { Chunk } from './reader.js';

/** A catch-up or long-poll body: the bytes, or for a JSON stream all messages as one array. */
export function renderBody(mode: Mode, chunks: readonly Chunk[]): Buffer {
  if (mode === 'json') {
    const messages: string[] = [];
    for (const { payload } of chunks)
      if (payload.mode === 'json') for (const m of payload.messages) messages.push(JSON.stringify(m));
    return Buffer.from(`[${messages.join(',')}]`, 'utf8');
  }
  return Buffer.concat(chunks.map(({ payload }) => (payload.mode === 'bytes' ? payload.bytes : Buffer.alloc(0))));
}

/**
 * One `data` event. JSON: the messages as an array on one line (JSON text holds no raw line
 * break). Text: one `data:` line per line of the text (CR, LF or CRLF break lines, so content
 * can never end the event or forge another). Binary: standard base64 (the response says so in
 * `stream-sse-data-encoding`).
 */
export function sseDataEvent(mode: Mode, payload: Payload): string {
  if (payload.mode === 'json') return `event: data\ndata:${JSON.stringify(payload.messages)}\n\n`;
  if (mode === 'binary') return `event: data\ndata:${payload.bytes.toString('base64')}\n\n`;
  const lines = payload.bytes.toString('utf8').split(/\r\n|\r|\n/);
  // A reader drops one space after `data:`; a line that starts with one keeps it by getting two.
  return `event: data\n${lines.map((line) => (line.startsWith(' ') ? `data: ${line}` : `data:${line}`)).join('\n')}\n\n`;
}

export interface Control {
  readonly streamNextOffset: string;
  readonly streamCursor?: string;
  readonly upToDate?: true;
  readonly streamClosed?: true;
}

export function sseControlEvent(control: Control): string {
  return `event: control\ndata:${JSON.stringify(control)}\n\n`;
}
