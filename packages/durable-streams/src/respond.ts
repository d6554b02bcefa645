/** Response headers every /ds/ answer carries, and the error answer (PROTOCOL.md 12.7). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '@herald/protocol';
import { corsHeaders, type OriginPolicy } from '@herald/server';
import type { Logger } from 'pino';
import { DsError } from './errors.js';

/** What a browser page may read of an answer, and send in a request (CORS). */
const EXPOSED = [
  'Stream-Next-Offset',
  'Stream-Cursor',
  'Stream-Up-To-Date',
  'Stream-Closed',
  'Stream-TTL',
  'Stream-Expires-At',
  'Stream-SSE-Data-Encoding',
  'Producer-Epoch',
  'Producer-Seq',
  'Producer-Expected-Seq',
  'Producer-Received-Seq',
  'ETag',
  'Location',
].join(', ');

export const ALLOWED_REQUEST_HEADERS = [
  'Authorization',
  'Content-Type',
  'If-None-Match',
  'Stream-TTL',
  'Stream-Expires-At',
  'Stream-Seq',
  'Stream-Closed',
  'Stream-Forked-From',
  'Stream-Fork-Offset',
  'Stream-Fork-Sub-Offset',
  'Producer-Id',
  'Producer-Epoch',
  'Producer-Seq',
].join(', ');

/** Security headers (nosniff, cross-origin reads allowed as CORS allows) and CORS for the request. */
export function baseHeaders(req: IncomingMessage, origins: OriginPolicy): Record<string, string> {
  const cors = corsHeaders(req, origins);
  return {
    'X-Content-Type-Options': 'nosniff',
    'Cross-Origin-Resource-Policy': 'cross-origin',
    ...cors,
    ...(cors['Access-Control-Allow-Origin'] === undefined ? {} : { 'Access-Control-Expose-Headers': EXPOSED }),
  };
}

export function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body?: Buffer | string,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const length = body === undefined ? 0 : Buffer.byteLength(body);
  res.writeHead(status, status === 204 || status === 304 ? headers : { ...headers, 'Content-Length': String(length) });
  res.end(body);
}

/** Herald's error shape with the protocol's status and headers; unexpected errors are logged, never sent. */
export function sendFailure(
  res: ServerResponse,
  error: unknown,
  headers: Record<string, string>,
  logger: Logger,
): void {
  let status: number;
  let code: string;
  let message: string;
  let extra: Record<string, string> = {};
  if (error instanceof DsError) {
    ({ status, code, message } = error);
    extra = { ...error.headers };
  } else if (error instanceof HeraldError) {
    ({ status, code, message } = error);
  } else {
    logger.error({ err: error }, 'durable streams request failed');
    status = 500;
    code = 'internal';
    message = 'internal error';
  }
  const body = JSON.stringify({ error: { code, message } });
  send(
    res,
    status,
    { ...headers, ...extra, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' },
    body,
  );
}
