/**
 * The publish route of the reference servers, as their authors would write it: `POST /publish`
 * with `{"channel", "data"}`, the body read and parsed, the data broadcast, `{}` answered. Herald
 * is published to the same way through `POST /api/publish`, so both sides pay for HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BenchPayload } from './payload.js';

/** Handles the request when it is a publish and returns true; false leaves it to the caller. */
export function handlePublish(
  req: IncomingMessage,
  res: ServerResponse,
  broadcast: (payload: BenchPayload) => void,
): boolean {
  if (req.method !== 'POST' || req.url !== '/publish') return false;
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let data: BenchPayload;
    try {
      data = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: BenchPayload }).data;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad json"}');
      return;
    }
    broadcast(data);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 }).end('{}');
  });
  return true;
}
