/**
 * The WebSocket endpoint (PROTOCOL.md section 5): upgrades, and the sweeps over its connections
 * (connect deadlines; pings spread over the interval, ping-rotation.ts). `ws` owns the handshake,
 * parsing, pings and close frames; each connection is a codec around a command session
 * (ws-connection.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { bearerToken } from '../http/credentials.js';
import { hookClientOf, upgradeAllowed, type TransportContext } from './context.js';
import { PING_TICK_MS, PingRotation } from './ping-rotation.js';
import { WsConnection } from './ws-connection.js';

/** Fragments one incoming message may arrive in. */
const MAX_FRAGMENTS = 1024;
/** Socket chunks `ws` may hold for an incomplete frame (a 80 KiB frame needs about 60 at MTU size). */
const MAX_BUFFERED_CHUNKS = 4096;

export class WebSocketTransport {
  readonly #ctx: TransportContext;
  readonly #wss: WebSocketServer;
  /** Open connections, each pinged (and checked for a dead peer) once per ping interval. */
  readonly #connections: PingRotation<WsConnection>;
  /**
   * Connections that have not sent `connect` yet. The deadline sweep walks only these: walking
   * every connection each second was 0.8 % of a 10,000-connection hub's busy time at 2
   * publications a second (docs/benchmarks.md). A connection leaves at the first sweep after it
   * connected or closed.
   */
  readonly #awaitingConnect = new Set<WsConnection>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #pinger: NodeJS.Timeout;

  constructor(ctx: TransportContext, maxFrameBytes: number) {
    this.#ctx = ctx;
    // Limits set explicitly rather than inherited: message size (1009 past it), no compression
    // (so no decompression bombs), and how a message may arrive. Browsers send each message as
    // one frame; every fragment or socket chunk `ws` holds costs a Buffer object, so 1-byte
    // fragments or 1-byte TCP segments could otherwise pin megabytes per connection (1008 past these).
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxFrameBytes,
      maxFragments: MAX_FRAGMENTS,
      maxBufferedChunks: MAX_BUFFERED_CHUNKS,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: false,
    });
    this.#connections = new PingRotation(
      ctx.pingIntervalSeconds * 1000,
      (connection) => connection.heartbeat(),
      (connection) => connection.pingIfDue(),
    );
    this.#sweeper = setInterval(() => this.#sweep(), 1_000).unref();
    this.#pinger = setInterval(() => this.#connections.tick(), PING_TICK_MS).unref();
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    if (!upgradeAllowed(this.#ctx, req, socket)) return;
    // `searchParams` is built on first use: a URL without a query never needs it.
    const token = bearerToken(req) ?? (url.search === '' ? undefined : (url.searchParams.get('token') ?? undefined));
    const client = hookClientOf(this.#ctx, req, 'websocket');
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new WsConnection(this.#ctx, ws, socket, token, this.#connections, client);
      this.#connections.add(connection);
      this.#awaitingConnect.add(connection);
    });
  }

  /** Open WebSocket connections (drain waits for them to finish their close handshakes). */
  get size(): number {
    return this.#connections.size;
  }

  close(): void {
    clearInterval(this.#sweeper);
    clearInterval(this.#pinger);
    this.#awaitingConnect.clear();
    for (const connection of this.#connections) connection.terminate();
  }

  /** Connect deadlines, every second (pings are the rotation's). */
  #sweep(): void {
    const now = Date.now();
    for (const connection of this.#awaitingConnect) {
      if (!connection.awaitsConnect(now)) this.#awaitingConnect.delete(connection);
    }
  }
}
