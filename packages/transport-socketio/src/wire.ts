/**
 * What one Engine.IO connection holds for its client but has not yet handed to the kernel, so that
 * the hub's queue bound (PROTOCOL.md section 8, guarantee 4) covers Socket.IO clients too.
 *
 * Engine.IO's write buffer has no bound of its own: while a transport is not writable (a WebSocket
 * whose last write has not completed, a long-poll without a pending GET) every packet waits there.
 * The bytes are counted as packets are created (`packetCreate`) and dropped to zero when Engine.IO
 * flushes its buffer (`flush`): those are the two documented events around that buffer. What a
 * flush handed to the transport then sits in the socket that carries it, counted by its
 * `writableLength`: the upgraded WebSocket's socket, or the socket of the latest long-poll GET.
 */
import type { Duplex } from 'node:stream';
import type { Socket as EngineSocket } from 'engine.io';
import { batchWrite, flushThreshold } from '@herald/server';
import type { EncodedPacket } from './packet.js';

export class Wire {
  readonly conn: EngineSocket;
  /** Bytes in Engine.IO's write buffer. */
  #queued = 0;
  /** The exact size of the packet being written by `writePacket`, so it is not measured again. */
  #nextPacketBytes = -1;
  /** The socket that carries the current transport's writes. */
  #socket: Duplex | undefined;
  /** The socket of a WebSocket upgrade in progress; it carries writes once Engine.IO switches. */
  #upgrading: Duplex | undefined;

  /** How much a turn's batch may hold for this client (turn-batch.ts in @herald/server). */
  readonly #flushAt: number;

  constructor(conn: EngineSocket, socket: Duplex | undefined, maxQueueBytes: number) {
    this.conn = conn;
    this.#socket = socket;
    this.#flushAt = flushThreshold(maxQueueBytes);
    conn.on('packetCreate', (packet: { data?: unknown }) => {
      if (this.#nextPacketBytes >= 0) {
        this.#queued += this.#nextPacketBytes;
        this.#nextPacketBytes = -1;
      } else {
        this.#queued += packetBytes(packet.data);
      }
    });
    conn.on('flush', () => {
      this.#queued = 0;
    });
    conn.on('upgrade', () => {
      if (this.#upgrading !== undefined) this.#socket = this.#upgrading;
      this.#upgrading = undefined;
    });
  }

  /** Bytes accepted for this client and not yet in the kernel. */
  bufferedBytes(): number {
    return this.#queued + (this.#socket?.writableLength ?? 0);
  }

  /**
   * Resolves true once this connection holds at most `bound` unsent bytes (at once when it does),
   * false after `ms` or when it closes: the pacing of answers and replays. Engine.IO's buffer empties
   * on `flush` and the socket's on `drain`; each is a moment to look again.
   */
  drained(bound: number, ms: number): Promise<boolean> {
    if (this.bufferedBytes() <= bound) return Promise.resolve(true);
    const conn = this.conn;
    return new Promise((resolve) => {
      let socket: Duplex | undefined;
      const done = (value: boolean): void => {
        clearTimeout(timer);
        conn.off('flush', check);
        conn.off('drain', check);
        conn.off('close', onClose);
        socket?.off('drain', check);
        resolve(value);
      };
      const check = (): void => {
        if (this.bufferedBytes() <= bound) return done(true);
        // The carrying socket may change (an upgrade, a new poll): follow it.
        if (this.#socket !== socket) {
          socket?.off('drain', check);
          socket = this.#socket;
          socket?.on('drain', check);
        }
      };
      const onClose = (): void => done(false);
      const timer = setTimeout(() => done(false), ms);
      conn.on('flush', check);
      conn.on('drain', check);
      conn.once('close', onClose);
      check();
    });
  }

  /** A long-poll GET arrived: its response will carry the next flush. */
  polling(socket: Duplex): void {
    if (this.conn.transport.name === 'polling') this.#socket = socket;
  }

  upgrading(socket: Duplex): void {
    this.#upgrading = socket;
  }

  /** Writes a pre-encoded packet, counting its known size. Ignored once the connection closes. */
  writePacket(packet: EncodedPacket): void {
    if (this.conn.readyState !== 'open') return;
    // Over WebSocket engine.io writes the frame to the socket now: it joins the turn's batch.
    // Over long-polling it waits in engine.io's buffer for the next GET, one answer per poll.
    const socket = this.#socket;
    if (socket !== undefined && this.conn.transport.name === 'websocket')
      batchWrite(socket, packet.bytes, this.#flushAt);
    this.#nextPacketBytes = packet.bytes;
    this.conn.write(packet.text, packet.options);
    this.#nextPacketBytes = -1;
  }

  /**
   * Closes after what is buffered (the goodbye) has left, and within `graceMs` in any case.
   *
   * Over WebSocket that is Engine.IO's own orderly close. Over long-polling it is not: Engine.IO
   * sends the close packet on the GET after the goodbye's, and holds the connection for 30 s if
   * that GET never comes (a client that was told to go elsewhere, a hub that stopped listening).
   * So a polling connection is discarded as soon as the goodbye has been handed to a GET; the
   * client's next poll is refused and it reconnects, which is what the goodbye told it to do.
   */
  closeAfterFlush(graceMs: number): void {
    const conn = this.conn;
    const force = setTimeout(() => {
      if (conn.readyState !== 'closed') this.destroy();
    }, graceMs).unref();
    conn.once('close', () => clearTimeout(force));
    if (conn.transport.name !== 'polling') {
      conn.close();
    } else if (this.#queued === 0) {
      conn.close(true);
    } else {
      conn.once('drain', () => conn.close(true));
    }
  }

  /**
   * Frees everything held for a client that will not read it: Engine.IO's buffer (discarded when
   * it closes) and the socket's, by destroying the socket still holding unsent bytes.
   */
  destroy(): void {
    this.#queued = 0;
    this.conn.close(true);
    const socket = this.#socket;
    if (
      socket !== undefined &&
      !socket.destroyed &&
      (socket.writableLength > 0 || this.conn.transport.name !== 'polling')
    ) {
      socket.destroy();
    }
  }
}

function packetBytes(data: unknown): number {
  if (data === undefined) return 1;
  if (typeof data === 'string') return Buffer.byteLength(data) + 1;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength + 1;
  return 1;
}
