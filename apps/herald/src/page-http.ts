/**
 * Small HTTP helpers for the pages' own endpoints (admin session, demo tokens). Answers use the
 * hub's one error shape (PROTOCOL.md section 4), so a page handles every failure the same way.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isOriginAllowed, originPolicy } from '@herald/server';

const SAME_HOST = originPolicy([]);
const MAX_BODY_BYTES = 4096;

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/**
 * Whether a state-changing request comes from a page of this very host. Browsers always send
 * `Origin` on POST, so a cross-site form or fetch is refused; tools without `Origin` pass.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  return isOriginAllowed(SAME_HOST, req.headers.origin, req.headers.host);
}

/** A small JSON object body; anything else (too large, not JSON, not an object) is undefined. */
export async function readSmallJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function cookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Whether the browser reached us over HTTPS, directly or through a TLS-terminating proxy. */
export function isHttps(req: IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted === true) return true;
  return req.headers['x-forwarded-proto'] === 'https';
}

export function bearer(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}
