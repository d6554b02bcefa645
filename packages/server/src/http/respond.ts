/** JSON answers and the one error shape of PROTOCOL.md section 4. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_CODES, HeraldError, type ErrorCode } from '@herald/protocol';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

export function sendError(
  res: ServerResponse,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, ERROR_CODES[code], JSON.stringify({ error: { code, message } }), headers);
}

/**
 * Answers any thrown value: HeraldErrors as themselves (with `Retry-After` when they say when to
 * come back), anything else as a 500 that hides details.
 */
export function sendThrown(res: ServerResponse, error: unknown, headers: Record<string, string> = {}): void {
  if (!(error instanceof HeraldError)) sendError(res, 'internal', 'internal error', headers);
  else if (error.retryAfterSeconds === undefined) sendError(res, error.code, error.message, headers);
  else sendError(res, error.code, error.message, { ...headers, 'Retry-After': String(error.retryAfterSeconds) });
}

/** A raw HTTP refusal on an upgrade socket, before any WebSocket handshake. */
export function refuseUpgrade(
  socket: NodeJS.WritableStream & { destroy(): void },
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify({ error: { code, message } });
  const status = ERROR_CODES[code];
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.write(
    `HTTP/1.1 ${status} ${statusText(status)}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.destroy();
}

function statusText(status: number): string {
  return (
    {
      400: 'Bad Request',
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'Not Found',
      426: 'Upgrade Required',
      429: 'Too Many Requests',
      503: 'Service Unavailable',
    }[status] ?? 'Error'
  );
}

/** The request path without its query string, which may hold a token and must never be logged. */
export function safePath(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
