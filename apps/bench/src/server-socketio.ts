/**
 * Reference server: Socket.IO 4 on its WebSocket transport only; a broadcast is `io.emit`, which
 * encodes the packet once and writes it to every client.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { handlePublish } from './http-publish.js';
import { serveControl } from './server-control.js';

// With --recovery, Socket.IO's connection state recovery is on (the drop-and-resume scenario).
const recovery = process.argv.includes('--recovery');
const http = createServer((req, res) => {
  if (!handlePublish(req, res, (payload) => io.emit('pub', payload))) res.writeHead(404).end();
});
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120_000 } } : {}),
});
http.listen(0, '127.0.0.1', () => {
  serveControl({
    port: (http.address() as AddressInfo).port,
    connections: () => io.engine.clientsCount,
    broadcast(payload) {
      io.emit('pub', payload);
    },
  });
});
