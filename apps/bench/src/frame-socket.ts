/**
 * The bench's WebSocket client: the opening handshake by `node:http`, then RFC 6455 frames read
 * straight off the TCP socket. A load generator shares the machine's cores with the server it
 * measures, and `ws`'s client spends about a microsecond on each message it reads (its receiver's
 * state machine, an event, a Buffer per message); at 100 subscribers of 10,000 publications/s that
 * is a whole core taken from the server under test. This reader walks the frames of each TCP read
 * in place and hands the caller each text message as a range of the read's buffer.
 *
 * It speaks what a client must and no more: server frames unmasked, client frames masked, pings
 * answered, the close handshake, fragmented messages reassembled. No extensions (the servers under
 * test run without `permessage-deflate`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { allocFrame } from './ws-frame.js';

const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_CONTINUATION = 0x0;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export interface FrameHandlers {
  open(socket: FrameSocket): void;
  /** A whole text or binary message: `data[start, end)`. Valid only during the call. */
  message(data: Buffer, start: number, end: number): void;
  /** The connection ended: `closed with <code>` or the error. Called once. */
  gone(reason: string): void;
}

export class FrameSocket {
  readonly #handlers: FrameHandlers;
  #socket: Socket | undefined;
  /** Bytes of a frame that has not wholly arrived yet. */
  #carry: Buffer | undefined;
  /** Fragments of a message sent in several frames (servers under test do not, but may). */
  #fragments: Buffer[] = [];
  #gone = false;

  constructor(url: string, handlers: FrameHandlers) {
    this.#handlers = handlers;
    const { hostname, port, pathname, search } = new URL(url);
    const key = randomBytes(16).toString('base64');
    const req = request({
      host: hostname,
      port,
      path: pathname + search,
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13',
      },
    });
    req.on('upgrade', (res, socket, head) => {
      const expected = createHash('sha1')
        .update(key + HANDSHAKE_GUID)
        .digest('base64');
      if (res.headers['sec-websocket-accept'] !== expected) {
        socket.destroy();
        this.#end('handshake: wrong Sec-WebSocket-Accept');
        return;
      }
      this.#socket = socket;
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => this.#read(chunk));
      socket.on('error', (error) => this.#end(error.message));
      socket.on('close', () => this.#end('closed with 1006'));
      handlers.open(this);
      if (head.length > 0) this.#read(head);
    });
    req.on('response', (res) => {
      res.resume();
      this.#end(`handshake: status ${res.statusCode ?? '?'}`);
    });
    req.on('error', (error) => this.#end(error.message));
    req.end();
  }

  /** Sends text messages in one TCP write. */
  send(...texts: string[]): void {
    const socket = this.#socket;
    if (socket === undefined || this.#gone) return;
    socket.write(
      texts.length === 1
        ? maskedFrame(0x1, Buffer.from(texts[0] as string))
        : Buffer.concat(texts.map((t) => maskedFrame(0x1, Buffer.from(t)))),
    );
  }

  terminate(): void {
    this.#socket?.destroy();
    this.#end('terminated');
  }

  #end(reason: string): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#socket?.destroy();
    this.#handlers.gone(reason);
  }

  #read(chunk: Buffer): void {
    let data = chunk;
    if (this.#carry !== undefined) {
      data = Buffer.concat([this.#carry, chunk]);
      this.#carry = undefined;
    }
    let at = 0;
    const length = data.length;
    while (!this.#gone) {
      if (length - at < 2) break;
      const b0 = data[at] as number;
      const b1 = data[at + 1] as number;
      if ((b1 & 0x80) !== 0) {
        this.#end('protocol: a server frame is masked');
        return;
      }
      let size = b1 & 0x7f;
      let header = 2;
      if (size === 126) {
        if (length - at < 4) break;
        size = data.readUInt16BE(at + 2);
        header = 4;
      } else if (size === 127) {
        if (length - at < 10) break;
        size = data.readUIntBE(at + 4, 6);
        header = 10;
      }
      const start = at + header;
      const end = start + size;
      if (end > length) break;
      at = end;
      this.#frame(b0, data, start, end);
    }
    if (at < length && !this.#gone) this.#carry = data.subarray(at);
  }

  #frame(b0: number, data: Buffer, start: number, end: number): void {
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode >= OP_CLOSE) {
      if (opcode === OP_PING) this.#socket?.write(maskedFrame(OP_PONG, data.subarray(start, end)));
      else if (opcode === OP_CLOSE) {
        const code = end - start >= 2 ? data.readUInt16BE(start) : 1005;
        this.#socket?.end(maskedFrame(OP_CLOSE, data.subarray(start, Math.min(end, start + 2))));
        this.#end(`closed with ${code}`);
      }
      return;
    }
    if (fin && opcode !== OP_CONTINUATION && this.#fragments.length === 0) {
      this.#handlers.message(data, start, end);
      return;
    }
    this.#fragments.push(Buffer.from(data.subarray(start, end)));
    if (!fin) return;
    const whole = Buffer.concat(this.#fragments);
    this.#fragments = [];
    this.#handlers.message(whole, 0, whole.length);
  }
}

/** A client frame (RFC 6455 section 5.3: always masked, with a fresh key). */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const { frame, payloadAt } = allocFrame(opcode, payload.length, true);
  const mask = randomBytes(4);
  mask.copy(frame, payloadAt - 4);
  for (let i = 0; i < payload.length; i++) frame[payloadAt + i] = (payload[i] as number) ^ (mask[i & 3] as number);
  return frame;
}
