/**
 * A WebSocket client written against the wire, for attacks `ws` would never let us make: any
 * opcode, RSV bits, masks, lengths that lie, fragments, bytes dribbled one at a time. It performs
 * a real RFC 6455 handshake over `net.Socket`, then sends whatever bytes it is given and parses
 * what the hub answers (server frames are never masked), so a test can see the exact close code.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export const Opcode = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const;

export interface FrameSpec {
  readonly opcode: number;
  readonly payload?: Buffer | string;
  readonly fin?: boolean;
  /** RSV1..3 as the three bits 0b100, 0b010, 0b001. */
  readonly rsv?: number;
  /** Clients must mask; false sends an unmasked frame (a protocol violation from a client). */
  readonly mask?: boolean;
  /** Declares this payload length instead of the real one (a length that lies). */
  readonly declaredLength?: number;
  /** Forces the 16- or 64-bit length encoding even for short payloads. */
  readonly lengthEncoding?: 7 | 16 | 64;
}

/** Builds one client frame (RFC 6455 section 5.2). Pure: the same spec always gives valid framing bytes. */
export function frame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const masked = spec.mask ?? true;
  const length = spec.declaredLength ?? payload.length;
  const encoding = spec.lengthEncoding ?? (length < 126 ? 7 : length < 65_536 ? 16 : 64);
  const header: number[] = [((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (spec.opcode & 0x0f)];
  const maskBit = masked ? 0x80 : 0;
  const extended: Buffer[] = [];
  if (encoding === 7) header.push(maskBit | length);
  else if (encoding === 16) {
    header.push(maskBit | 126);
    const b = Buffer.alloc(2);
    b.writeUInt16BE(length);
    extended.push(b);
  } else {
    header.push(maskBit | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(length));
    extended.push(b);
  }
  if (!masked) return Buffer.concat([Buffer.from(header), ...extended, payload]);
  const key = randomBytes(4);
  const body = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = (payload[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([Buffer.from(header), ...extended, key, body]);
}

export const textFrame = (text: string | Buffer, extra: Partial<FrameSpec> = {}): Buffer =>
  frame({ opcode: Opcode.Text, payload: text, ...extra });

export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code);
  r.copy(b, 2);
  return b;
}

export interface ServerFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

export interface OpenOptions {
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly localAddress?: string;
  readonly timeoutMs?: number;
}

export class HandshakeRefused extends Error {
  constructor(
    readonly status: number,
    readonly head: string,
  ) {
    super(`handshake refused: HTTP ${status}`);
  }
}

export class RawWs {
  readonly socket: Socket;
  readonly frames: ServerFrame[] = [];
  /** The code of the hub's close frame; undefined if the socket ended without one (or 1005 for an empty close). */
  closeCode: number | undefined;
  readonly ended: Promise<void>;
  #buffer: Buffer = Buffer.alloc(0);
  #onFrame: (() => void) | undefined;

  /** The response head of the handshake (status line and headers). */
  readonly handshake: string;

  private constructor(socket: Socket, rest: Buffer, handshake: string) {
    this.socket = socket;
    this.handshake = handshake;
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.#parse(chunk));
    if (rest.length > 0) this.#parse(rest);
  }

  /** Connects and completes the upgrade; rejects with HandshakeRefused when the hub answers anything but 101. */
  static open(port: number, options: OpenOptions = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      const socket = connect({
        port,
        host: '127.0.0.1',
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      });
      socket.setNoDelay(true);
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => fail(new Error('handshake timed out')), options.timeoutMs ?? 10_000);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once('error', fail);
      socket.on('data', function onData(chunk: Buffer) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        socket.off('error', fail);
        socket.on('error', () => undefined);
        clearTimeout(timer);
        const text = head.subarray(0, end).toString('latin1');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
        if (status !== 101) {
          // Give the body a moment to arrive, for tests that read it.
          const rest = head.subarray(end + 4);
          socket.destroy();
          reject(new HandshakeRefused(status, text + '\r\n\r\n' + rest.toString('utf8')));
          return;
        }
        const accept = /^sec-websocket-accept:\s*(\S+)/im.exec(text)?.[1];
        const expected = createHash('sha1')
          .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
          .digest('base64');
        if (accept !== expected) {
          fail(new Error('bad Sec-WebSocket-Accept'));
          return;
        }
        resolve(new RawWs(socket, head.subarray(end + 4), text));
      });
      const headers: Record<string, string> = {
        Host: `127.0.0.1:${port}`,
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13',
        ...options.headers,
      };
      socket.write(
        `GET ${options.path ?? '/ws'} HTTP/1.1\r\n` +
          Object.entries(headers)
            .map(([k, v]) => `${k}: ${v}\r\n`)
            .join('') +
          '\r\n',
      );
    });
  }

  write(bytes: Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /** Sends a masked text frame with a JSON command. */
  command(id: number, method: string, params: Record<string, unknown> = {}): void {
    this.write(textFrame(JSON.stringify({ id, method, params })));
  }

  /** The JSON text messages received so far (complete, unfragmented text frames). */
  messages(): any[] {
    return this.frames.filter((f) => f.opcode === Opcode.Text).map((f) => JSON.parse(f.payload.toString('utf8')));
  }

  /** Resolves when a frame satisfying `predicate` arrived, or rejects after `timeoutMs`. */
  async waitFor(predicate: (frame: ServerFrame) => boolean, timeoutMs = 10_000): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(predicate);
      if (found !== undefined) return found;
      if (this.socket.destroyed) throw new Error('socket closed before the expected frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.#onFrame = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Resolves with the hub's close code once the socket is gone (undefined: no close frame came). */
  async closed(timeoutMs = 35_000): Promise<number | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const result = await Promise.race([this.ended, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.socket.destroy();
      throw new Error(`socket still open after ${timeoutMs} ms (close code so far: ${this.closeCode})`);
    }
    return this.closeCode;
  }

  /** Waits for the hub's close frame, answers it like a well-behaved peer, and returns its code. */
  async closeCodeOf(timeoutMs = 35_000): Promise<number | undefined> {
    try {
      await this.waitFor((f) => f.opcode === Opcode.Close, timeoutMs);
    } catch {
      // ended without a close frame, or timed out: report what we have
    }
    this.socket.destroy();
    return this.closeCode;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #parse(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) return;
      let length = (b[1] as number) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + length) return;
      const f: ServerFrame = {
        fin: ((b[0] as number) & 0x80) !== 0,
        opcode: (b[0] as number) & 0x0f,
        payload: Buffer.from(b.subarray(offset, offset + length)),
      };
      this.#buffer = b.subarray(offset + length);
      if (f.opcode === Opcode.Close && this.closeCode === undefined) {
        this.closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
      }
      if (f.opcode === Opcode.Ping && !this.socket.destroyed) {
        // A live peer answers pings; tests that play dead destroy or stop reading instead.
        if (this.answerPings) this.write(frame({ opcode: Opcode.Pong, payload: f.payload }));
      }
      this.frames.push(f);
      this.#onFrame?.();
    }
  }

  /** Whether pings are answered (default true). A dribbling attacker mid-frame cannot answer them. */
  answerPings = true;
}

/** Whether a frame's payload starts with `prefix`, without decoding the whole (possibly huge) payload. */
export function startsWithText(payload: Buffer, prefix: string): boolean {
  return payload.subarray(0, Buffer.byteLength(prefix)).toString('utf8') === prefix;
}
