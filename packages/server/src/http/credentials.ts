/**
 * Where a client token may come from on an HTTP request (PROTOCOL.md sections 5 to 7):
 * the `Authorization: Bearer` header, the `token` query parameter, or a configured cookie.
 */
import type { IncomingMessage } from 'node:http';

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

export function requestToken(req: IncomingMessage, url: URL, cookieName: string | undefined): string | undefined {
  const fromHeader = bearerToken(req);
  if (fromHeader !== undefined) return fromHeader;
  const fromQuery = url.searchParams.get('token');
  if (fromQuery !== null && fromQuery !== '') return fromQuery;
  if (cookieName !== undefined) return cookieValue(req.headers.cookie, cookieName);
  return undefined;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return value;
      }
    }
  }
  return undefined;
}
