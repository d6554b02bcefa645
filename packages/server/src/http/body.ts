/** Reads a request body (bytes, or JSON) with a byte limit, refusing early on a too-large Content-Length. */
import type { IncomingMessage } from 'node:http';
import { HeraldError } from '@herald/protocol';

/** The request body's bytes, refused with `too_large` past `maxBytes` (early, on Content-Length). */
export async function readBodyBytes(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw new HeraldError('too_large', `request body is larger than ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.resume();
      throw new HeraldError('too_large', `request body is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const text = (await readBodyBytes(req, maxBytes)).toString('utf8');
  if (text.length === 0) throw new HeraldError('bad_request', 'request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch {
    throw new HeraldError('bad_request', 'request body is not valid JSON');
  }
}
