/**
 * Reference server: raw `ws`. `ws` does the handshake; a broadcast builds the frame once and
 * writes it to each socket, one `write` per client: the floor any WebSocket fan-out is held to.
 * `POST /publish` broadcasts from a separate publisher (http-publish.ts).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { handlePublish } from './http-publish.js';
import type { BenchPayload } from './payload.js';
import { serveControl } from './server-control.js';
import { textFrame } from './ws-frame.js';

const sockets = new Set<Duplex>();
function broadcast(payload: BenchPayload): void {
  const frame = textFrame(JSON.stringify(payload));
  for (const socket of sockets) socket.write(frame);
}
const http = createServer((req, res) => {
  if (!handlePublish(req, res, broadcast)) res.writeHead(404).end();
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
http.on('upgrade', (req, socket: Duplex, head: Buffer) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    sockets.add(socket);
    ws.on('close', () => sockets.delete(socket));
    ws.on('error', () => undefined);
  });
});
http.listen(0, '127.0.0.1', () => {
  serveControl({
    port: (http.address() as AddressInfo).port,
    connections: () => sockets.size,
    broadcast,
  });
});
