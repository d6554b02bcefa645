/**
 * Pusher's WebSocket endpoint, `/app/{key}?protocol=7`: the handshake checks (origin, readiness,
 * app key, protocol version), and the pipe that carries one connection's messages as text frames.
 * `ws` owns the framing; the connection (connection.ts) owns the protocol.
 *
 * Activity (Pusher's rule): a client that sends nothing for `activity_timeout` seconds is sent
 * `pusher:ping`, and one that then stays silent for `PONG_TIMEOUT_MS` is closed with 4201.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HeraldError } from '@herald/protocol';
import {
  drainedBelow,
  flushThreshold,
  gateWrites,
  heldBytes,
  releaseHeld,
  textFrame,
  upgradeAllowed,
  writeBatched,
  type TransportContext,
} from '@herald/server';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { PusherApp, PusherApps } from './apps.js';
import { PusherConnection, type PusherHooks, type PusherPipe } from './connection.js';
import { PusherCode, errorMessage, message, type PusherPublication } from './messages.js';

/** How long a silent client has to answer `pusher:ping` before it is closed with 4201. */
export const PONG_TIMEOUT_MS = 30_000;
/** How long the hub waits for a client to take what it was sent before it counts as a slow consumer. */
const DRAIN_TIMEOUT_MS = 10_000;
/** How long a closing socket may linger for its close handshake before it is destroyed. */
const CLOSE_GRACE_MS = 2_000;

export interface WebSocketEndpointOptions {
  readonly activityTimeoutSeconds: number;
  readonly hooks: PusherHooks;
  /** Largest frame a client may send. */
  readonly maxFrameBytes: number;
}

class WsPipe implements PusherPipe {
  readonly #ws: WebSocket;
  readonly #socket: Duplex;
  readonly #flushAt: number;
  #closing = false;
  /** When the client last sent anything, and when it was pinged for being silent (0: not pinged). */
  lastHeard = Date.now();
  pingedAt = 0;

  constructor(ws: WebSocket, socket: Duplex, maxQueueBytes: number) {
    this.#ws = ws;
    this.#socket = socket;
    this.#flushAt = flushThreshold(maxQueueBytes);
    gateWrites(socket, ws);
  }

  send(json: string): void {
    if (this.#closing || this.#socket.destroyed) return;
    writeBatched(this.#socket, textFrame(json), this.#flushAt);
  }

  sendPublication(publication: PusherPublication): void {
    if (this.#closing || this.#socket.destroyed) return;
    // The frame is built by the first WebSocket subscriber and shared by the others.
    publication.frame ??= textFrame(publication.json);
    writeBatched(this.#socket, publication.frame, this.#flushAt);
  }

  bufferedBytes(): number {
    return this.#socket.writableLength + heldBytes(this.#socket);
  }

  drained(bound: number): Promise<boolean> {
    // What the turn holds leaves now: the wait is for the client to take it.
    releaseHeld(this.#socket);
    return drainedBelow(this.#socket, () => this.bufferedBytes(), bound, DRAIN_TIMEOUT_MS);
  }

  close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    // What the turn holds goes before the close frame, which `ws` writes directly.
    releaseHeld(this.#socket);
    // A close reason is at most 123 bytes.
    this.#ws.close(code, Buffer.from(reason).subarray(0, 123).toString());
    setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  terminate(): void {
    this.#closing = true;
    this.#ws.terminate();
  }
}

export class PusherWebSocketEndpoint {
  readonly #ctx: TransportContext;
  readonly #apps: PusherApps;
  readonly #options: WebSocketEndpointOptions;
  readonly #wss: WebSocketServer;
  readonly #open = new Map<WsPipe, PusherConnection>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(ctx: TransportContext, apps: PusherApps, options: WebSocketEndpointOptions) {
    this.#ctx = ctx;
    this.#apps = apps;
    this.#options = options;
    // The same limits as the hub's own WebSocket: no compression, a bounded message.
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.#sweeper = setInterval(() => this.#sweep(), 1_000).unref();
  }

  get size(): number {
    return this.#open.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    if (!upgradeAllowed(this.#ctx, req, socket)) return;
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#opened(ws, socket, url));
  }

  /** Pusher refuses after the handshake, with a close code pusher-js acts on (and `pusher:error` before it). */
  #opened(ws: WebSocket, socket: Duplex, url: URL): void {
    ws.on('error', () => undefined);
    const handshake = checkHandshake(this.#apps, url);
    if (!handshake.ok) {
      ws.send(errorMessage(handshake.code, handshake.message));
      ws.close(handshake.code, handshake.message);
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
      return;
    }
    const pipe = new WsPipe(ws, socket, this.#ctx.hub.limits.maxQueueBytes);
    const connection = new PusherConnection(this.#ctx, handshake.app, pipe, this.#options.hooks);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      pipe.lastHeard = Date.now();
      pipe.pingedAt = 0;
      if (isBinary) return connection.session.violation('binary frames are not part of the Pusher protocol');
      connection.receive(rawText(data));
    });
    ws.on('close', () => {
      this.#open.delete(pipe);
      connection.closed('client closed');
    });
    try {
      connection.start(this.#options.activityTimeoutSeconds);
      this.#open.set(pipe, connection);
    } catch (error) {
      // Draining or broker lost (reconnect now), or the per-user cap (back off).
      const code =
        error instanceof HeraldError && error.code === 'rate_limited' ? PusherCode.OverCapacity : PusherCode.Reconnect;
      const text = error instanceof HeraldError ? error.message : 'internal error';
      pipe.send(errorMessage(code, text));
      pipe.close(code, text);
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const pipe of this.#open.keys()) pipe.terminate();
  }

  #sweep(): void {
    const now = Date.now();
    const silentAfter = this.#options.activityTimeoutSeconds * 1000;
    for (const [pipe, connection] of this.#open) {
      if (pipe.pingedAt !== 0) {
        if (now - pipe.pingedAt > PONG_TIMEOUT_MS) pipe.close(PusherCode.PongNotReceived, 'Pong reply not received');
      } else if (now - pipe.lastHeard > silentAfter) {
        pipe.pingedAt = now;
        connection.send(message('pusher:ping', {}));
      }
    }
  }
}

export type Handshake =
  | { readonly ok: true; readonly app: PusherApp }
  | { readonly ok: false; readonly code: number; readonly message: string };

/** The app a connection URL (`/app/{key}?protocol=7`) names, or what Pusher refuses it for, with its close code. */
export function checkHandshake(apps: PusherApps, url: URL): Handshake {
  const match = /\/app\/([^/]+)$/.exec(url.pathname);
  if (match === null)
    return { ok: false, code: PusherCode.PathNotFound, message: 'Path not found: connect to /app/{key}' };
  let key: string;
  try {
    key = decodeURIComponent(match[1] as string);
  } catch {
    key = '';
  }
  const app = apps.byKey(key);
  if (app === undefined)
    return { ok: false, code: PusherCode.AppNotFound, message: `App key ${key.slice(0, 64)} not in this cluster` };
  const protocol = url.searchParams.get('protocol');
  if (protocol === null) return { ok: false, code: PusherCode.NoProtocol, message: 'No protocol version supplied' };
  if (!/^\d+$/.test(protocol))
    return { ok: false, code: PusherCode.InvalidVersion, message: 'Invalid version string format' };
  const version = Number(protocol);
  if (version < 5 || version > 7) {
    return {
      ok: false,
      code: PusherCode.UnsupportedProtocol,
      message: `Unsupported protocol version ${version}: this hub speaks 5 to 7`,
    };
  }
  return { ok: true, app };
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
