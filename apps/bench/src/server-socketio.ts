/**
 * Reference server: Socket.IO 4 on its WebSocket transport only; a broadcast is `io.emit`, which
 * encodes the packet once and writes it to every client.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { serveControl } from './server-control.js';

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
http.listen(0, '127.0.0.1', () => {
  serveControl({
    port: (http.address() as AddressInfo).port,
    connections: () => io.engine.clientsCount,
    broadcast(payload) {
      io.emit('pub', payload);
    },
  });
});
