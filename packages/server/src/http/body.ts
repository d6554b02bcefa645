/** Reads a request body (bytes, or JSON) with a byte limit, refusing early on a too-large Content-Length. */
import type { IncomingMessage } from 'node:http';
import { HeraldError } from '@herald/protocol';

/**
 * The request body's bytes, refused with `too_large` past `maxBytes` (early, on Content-Length).
 * Read with 'data'/'end' listeners rather than `for await`: a publish is one small chunk, and the
 * async iterator's promise machinery cost more than the rest of reading it (a profile of
 * `herald bench --scenarios autocannon`).
 */
export function readBodyBytes(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.reject(new HeraldError('too_large', `request body is larger than ${maxBytes} bytes`));
  }
  // Listeners attached too late would wait forever: the body was taken already, or the client left.
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (req.destroyed) return Promise.reject(new Error('the request was closed before its body ended'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        done();
        req.resume();
        reject(new HeraldError('too_large', `request body is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      done();
      reject(error);
    };
    // A client that goes away mid-body: 'close' without 'end' (as `for await` rejects then too).
    const onClose = (): void => {
      done();
      reject(new Error('the request was closed before its body ended'));
    };
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
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
