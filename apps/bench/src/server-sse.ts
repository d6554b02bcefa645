/**
 * Reference server: plain `node:http` Server-Sent Events. A broadcast builds the event once and
 * `res.write`s it to every stream (node corks the socket for the tick and writes the chunks together).
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handlePublish } from './http-publish.js';
import type { BenchPayload } from './payload.js';
import { serveControl } from './server-control.js';

const streams = new Set<ServerResponse>();
function broadcast(payload: BenchPayload): void {
  const event = Buffer.from(`data: ${JSON.stringify(payload)}\n\n`);
  for (const res of streams) res.write(event);
}
const http = createServer((req, res) => {
  if (handlePublish(req, res, broadcast)) return;
  if (req.url?.startsWith('/sse') !== true) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.socket?.setNoDelay(true);
  res.write(': connected\n\n');
  streams.add(res);
  req.socket.once('close', () => streams.delete(res));
});
http.listen(0, '127.0.0.1', () => {
  serveControl({
    port: (http.address() as AddressInfo).port,
    connections: () => streams.size,
    broadcast,
  });
});
