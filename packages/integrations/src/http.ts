/** JSON over node:http for the integration routes, with the hub's error shape (PROTOCOL.md section 4). */
import type { ServerResponse } from 'node:http';
import { ERROR_CODES, HeraldError } from '@herald/protocol';
import { readJsonBody } from '@herald/server';

/** The hub's own body reader: the same byte limit and error codes as the server API. */
export const readJson = readJsonBody;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Answers a thrown value: HeraldErrors as themselves, anything else as a 500 without details. */
export function sendError(res: ServerResponse, error: unknown, headers: Record<string, string> = {}): void {
  const e = error instanceof HeraldError ? error : new HeraldError('internal', 'internal error');
  sendJson(res, ERROR_CODES[e.code], { error: { code: e.code, message: e.message } }, headers);
}
