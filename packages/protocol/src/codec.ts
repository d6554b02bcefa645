/**
 * The pure codec shared by the hub and the SDK: command frames, publication JSON and replies.
 * Publications are built by string concatenation around an already serialized `data` so a
 * publication is stringified once, when it is accepted, and never again on its way out.
 */
import type { ErrorCode } from './codes.js';
import { METHODS, type Command, type Method } from './types.js';

const METHOD_SET: ReadonlySet<string> = new Set(METHODS);

export type CommandParse =
  | { readonly ok: true; readonly command: Command }
  /** `fatal` means the peer broke the framing contract (close 4002); otherwise answer `id` with an error. */
  | { readonly ok: false; readonly fatal: true; readonly reason: string }
  | {
      readonly ok: false;
      readonly fatal: false;
      readonly id: number;
      readonly code: ErrorCode;
      readonly reason: string;
    };

export function parseCommand(text: string): CommandParse {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, fatal: true, reason: 'frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, fatal: true, reason: 'a command must be a JSON object' };
  }
  const { id, method, params } = value as Record<string, unknown>;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) {
    return { ok: false, fatal: true, reason: 'command id must be a positive integer' };
  }
  if (typeof method !== 'string' || !METHOD_SET.has(method)) {
    return { ok: false, fatal: true, reason: `unknown method ${JSON.stringify(String(method)).slice(0, 64)}` };
  }
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
    return { ok: false, fatal: false, id, code: 'bad_request', reason: 'params must be a JSON object' };
  }
  return {
    ok: true,
    command: { id, method: method as Method, params: (params ?? {}) as Record<string, unknown> },
  };
}

export interface PublicationFields {
  readonly channel: string;
  readonly offset?: number;
  readonly epoch?: string;
  /** `data` already serialized as JSON text. */
  readonly dataJson: string;
  readonly event?: string;
  readonly ts: number;
  /** The publisher's `info`, already serialized, when there is one. */
  readonly infoJson?: string;
  /**
   * A text stream's member, already serialized and always last: `"stream":{...}` on the
   * publication that opens a stream, `"append":{...}` on each append (docs/streams.md).
   */
  readonly streamJson?: string;
}

/** The publication object of PROTOCOL.md section 2, as JSON text, fields in the documented order. */
export function publicationJson(p: PublicationFields): string {
  let json = `{"channel":"${p.channel}"`;
  if (p.offset !== undefined) json += `,"offset":${p.offset},"epoch":${JSON.stringify(p.epoch)}`;
  json += `,"data":${p.dataJson}`;
  if (p.event !== undefined) json += `,"event":${JSON.stringify(p.event)}`;
  json += `,"ts":${p.ts}`;
  if (p.infoJson !== undefined) json += `,"info":${p.infoJson}`;
  if (p.streamJson !== undefined) json += `,${p.streamJson}`;
  return json + '}';
}

/** A WebSocket push frame for a publication already in JSON text. */
export function pubPushJson(publicationJsonText: string): string {
  return `{"push":"pub","pub":${publicationJsonText}}`;
}

export function replyJson(id: number, result: unknown): string {
  return `{"id":${id},"result":${JSON.stringify(result)}}`;
}

export function errorReplyJson(id: number, code: ErrorCode, message: string): string {
  return JSON.stringify({ id, error: { code, message } });
}
