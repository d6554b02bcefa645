/**
 * What an append stores as its publication's `data`, and back. The choice keeps a stream easy
 * to follow for Herald's own clients, whatever the content type:
 *
 * - JSON streams (`application/json`): the append's messages as an array (a JSON array body is
 *   flattened one level, PROTOCOL.md 9.1; anything else is one message).
 * - Any other stream: the bytes as a string when they are valid UTF-8 (text, and most "binary"
 *   that is really text), else `{"base64": "..."}`. Either way the bytes come back exactly.
 */
import { DsError } from './errors.js';
import { mediaType } from './headers.js';

export type Mode = 'json' | 'text' | 'binary';

/** An append's content, parsed once. */
export type Payload =
  { readonly mode: 'json'; readonly messages: readonly unknown[] } | { readonly mode: 'bytes'; readonly bytes: Buffer };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function modeOf(contentType: string): Mode {
  const type = mediaType(contentType);
  if (type === 'application/json') return 'json';
  return type.startsWith('text/') ? 'text' : 'binary';
}

/**
 * The content of a request body for a stream of `mode`. An empty JSON array is no content on
 * create (PUT `[]` makes an empty stream) and a 400 on append (PROTOCOL.md 9.1.3).
 */
export function parseBody(mode: Mode, body: Buffer, onCreate: boolean): Payload | undefined {
  if (body.length === 0) return undefined;
  if (mode !== 'json') return { mode: 'bytes', bytes: body };
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(body));
  } catch {
    throw new DsError(400, 'bad_request', 'the body is not valid JSON');
  }
  const messages = Array.isArray(value) ? value : [value];
  if (messages.length === 0) {
    if (onCreate) return undefined;
    throw new DsError(400, 'bad_request', 'an empty JSON array appends nothing');
  }
  return { mode: 'json', messages };
}

/** The publication `data` (as JSON text) for a payload. */
export function dataJson(payload: Payload): string {
  if (payload.mode === 'json') return JSON.stringify(payload.messages);
  const text = asUtf8(payload.bytes);
  return JSON.stringify(text ?? { base64: payload.bytes.toString('base64') });
}

/** A publication's `data` back as a payload of `mode`; undefined when it holds none (or is not ours). */
export function payloadOf(mode: Mode, data: unknown): Payload | undefined {
  if (mode === 'json') return Array.isArray(data) && data.length > 0 ? { mode: 'json', messages: data } : undefined;
  if (typeof data === 'string') return data === '' ? undefined : { mode: 'bytes', bytes: Buffer.from(data, 'utf8') };
  const base64 = (data as { base64?: unknown } | null)?.base64;
  if (typeof base64 !== 'string' || base64 === '') return undefined;
  return { mode: 'bytes', bytes: Buffer.from(base64, 'base64') };
}

/** How much a payload holds, in the unit of sub-offsets: messages for JSON, bytes otherwise. */
export function sizeOf(payload: Payload): number {
  return payload.mode === 'json' ? payload.messages.length : payload.bytes.length;
}

/** The first `count` messages or bytes (PROTOCOL.md 4.2, Stream-Fork-Sub-Offset). */
export function prefixOf(payload: Payload, count: number): Payload | undefined {
  if (count <= 0) return undefined;
  return payload.mode === 'json'
    ? { mode: 'json', messages: payload.messages.slice(0, count) }
    : { mode: 'bytes', bytes: payload.bytes.subarray(0, count) };
}

/** Two payloads of one stream as one (a fork's inherited prefix, then its initial body). */
export function concat(first: Payload | undefined, second: Payload | undefined): Payload | undefined {
  if (first === undefined) return second;
  if (second === undefined) return first;
  if (first.mode === 'json' && second.mode === 'json') {
    return { mode: 'json', messages: [...first.messages, ...second.messages] };
  }
  if (first.mode === 'bytes' && second.mode === 'bytes') {
    return { mode: 'bytes', bytes: Buffer.concat([first.bytes, second.bytes]) };
  }
  throw new Error('payloads of one stream share a mode');
}

/** The bytes as text when they are valid UTF-8 (a BOM kept as it is), else undefined. */
function asUtf8(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
