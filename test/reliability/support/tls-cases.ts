/**
 * Bad input for the TLS listener below HTTP: bytes that are not TLS, handshakes cut short or
 * corrupted, handshakes the hub must refuse, clients that finish the handshake and then say
 * nothing, and broken HTTP/2 (preface, frames, header blocks). Each case says what the hub must
 * do with the connection; seeded, so a failure is reproduced by its seed and index.
 */
import { createServer } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/**
 * What the hub must do: `refused` (the TLS handshake fails), `closed` (the connection ends, however),
 * `goaway` (an HTTP/2 GOAWAY frame, then the end), or an HTTP status on HTTP/1.1.
 */
export type TlsExpectation = 'refused' | 'closed' | 'goaway' | number;

export interface TlsCase {
  readonly category: string;
  readonly detail: string;
  /** `tcp`: the bytes go on the raw socket; `tls`: a real handshake first, then the bytes inside it. */
  readonly layer: 'tcp' | 'tls';
  /** Client TLS options for `tls` cases (ALPN, versions). */
  readonly tls?: Pick<ConnectionOptions, 'ALPNProtocols' | 'minVersion' | 'maxVersion'>;
  readonly bytes: Buffer;
  readonly expect: TlsExpectation;
}

/** The HTTP/2 connection preface a client must send first (RFC 9113 section 3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** One HTTP/2 frame; `length` may lie about the payload. */
export function h2Frame(type: number, flags: number, stream: number, payload: Buffer, length = payload.length): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** Frame types (RFC 9113 section 6). */
export const H2 = { DATA: 0, HEADERS: 1, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

/** Frame types in what an HTTP/2 server sent, in order (stops at a frame cut short). */
export function h2FrameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= bytes.length;) {
    types.push(bytes[at + 3] as number);
    at += 9 + bytes.readUIntBE(at, 3);
  }
  return types;
}

/** The ClientHello Node's own TLS client sends (with ALPN h2 and http/1.1), caught by a plain TCP server. */
export function captureClientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      socket.once('data', (hello: Buffer) => {
        resolve(hello);
        socket.destroy();
        server.close();
      });
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      const client = tlsConnect({
        port,
        host: '127.0.0.1',
        rejectUnauthorized: false,
        ALPNProtocols: ['h2', 'http/1.1'],
      });
      client.on('error', () => undefined);
    });
  });
}

/** `rounds` of every case; random parts drawn from `rnd` (see frame-cases.ts `prng`). */
export function tlsCases(rounds: number, clientHello: Buffer, rnd: () => number): TlsCase[] {
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(0, 255)));
  const h2 = { ALPNProtocols: ['h2'] };
  const settings = h2Frame(H2.SETTINGS, 0, 0, Buffer.alloc(0));
  const h2Bad = (detail: string, frames: Buffer[]): TlsCase => ({
    category: 'HTTP/2 frames',
    detail,
    layer: 'tls',
    tls: h2,
    bytes: Buffer.concat([H2_PREFACE, settings, ...frames]),
    expect: 'goaway',
  });
  const generators: Array<() => TlsCase> = [
    // Not TLS at all.
    () => ({ category: 'not TLS', detail: 'random bytes', layer: 'tcp', bytes: bytes(int(1, 2000)), expect: 'closed' }),
    () => ({
      category: 'not TLS',
      detail: 'plain HTTP on the TLS port',
      layer: 'tcp',
      bytes: Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'),
      expect: 'closed',
    }),
    () => ({
      category: 'not TLS',
      detail: 'application-data record before any handshake',
      layer: 'tcp',
      bytes: Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x40]), bytes(64)]),
      expect: 'closed',
    }),
    () => ({
      category: 'not TLS',
      detail: 'SSLv2-style hello',
      layer: 'tcp',
      bytes: Buffer.concat([Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02]), bytes(0x2b)]),
      expect: 'closed',
    }),
    // Handshakes cut short: the hub waits for the rest until its handshake timeout.
    () => {
      const cut = int(1, clientHello.length - 1);
      return {
        category: 'truncated handshake',
        detail: `ClientHello cut at ${cut} of ${clientHello.length} bytes`,
        layer: 'tcp',
        bytes: clientHello.subarray(0, cut),
        expect: 'closed',
      };
    },
    () => ({
      category: 'truncated handshake',
      detail: 'record header announcing 16 KB, then nothing',
      layer: 'tcp',
      bytes: Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01]),
      expect: 'closed',
    }),
    () => ({
      category: 'silent',
      detail: 'TCP connection that never says hello',
      layer: 'tcp',
      bytes: Buffer.alloc(0),
      expect: 'closed',
    }),
    // Corrupted handshakes.
    () => {
      const corrupt = Buffer.from(clientHello);
      const flips = int(1, 8);
      for (let i = 0; i < flips; i++) {
        const at = int(5, corrupt.length - 1);
        corrupt[at] = (corrupt[at] as number) ^ int(1, 255);
      }
      return {
        category: 'bad handshake',
        detail: `ClientHello with ${flips} bytes flipped`,
        layer: 'tcp',
        bytes: corrupt,
        expect: 'closed',
      };
    },
    () => ({
      category: 'bad handshake',
      detail: 'TLS 1.0 only',
      layer: 'tls',
      tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1' },
      bytes: Buffer.alloc(0),
      expect: 'refused',
    }),
    () => ({
      category: 'bad handshake',
      detail: 'ALPN offering only unknown protocols',
      layer: 'tls',
      tls: { ALPNProtocols: ['spdy/3.1', 'x'.repeat(int(1, 200))] },
      bytes: Buffer.alloc(0),
      expect: 'refused',
    }),
    // A finished handshake, then nothing.
    () => ({
      category: 'silent',
      detail: 'TLS done (http/1.1), no request',
      layer: 'tls',
      tls: { ALPNProtocols: ['http/1.1'] },
      bytes: Buffer.alloc(0),
      expect: 408,
    }),
    () => ({
      category: 'silent',
      detail: 'TLS done (no ALPN), no request',
      layer: 'tls',
      bytes: Buffer.alloc(0),
      expect: 408,
    }),
    () => ({
      category: 'silent',
      detail: 'TLS done (h2), no preface',
      layer: 'tls',
      tls: h2,
      bytes: Buffer.alloc(0),
      expect: 'goaway',
    }),
    () => ({
      category: 'silent',
      detail: 'h2 preface and SETTINGS, then nothing',
      layer: 'tls',
      tls: h2,
      bytes: Buffer.concat([H2_PREFACE, settings]),
      expect: 'goaway',
    }),
    // Broken HTTP/2.
    () => ({
      category: 'HTTP/2 preface',
      detail: 'bad preface',
      layer: 'tls',
      tls: h2,
      bytes: Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'), bytes(int(0, 100))]),
      expect: 'goaway',
    }),
    () => ({
      category: 'HTTP/2 preface',
      detail: 'HTTP/1.1 request after choosing h2',
      layer: 'tls',
      tls: h2,
      bytes: Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'),
      expect: 'goaway',
    }),
    () => h2Bad('random bytes after the preface', [Buffer.from([0, 0, 8, 0xff]), bytes(int(40, 400))]),
    () =>
      h2Bad('HEADERS with a junk header block', [h2Frame(H2.HEADERS, END_HEADERS | END_STREAM, 1, bytes(int(1, 300)))]),
    () =>
      h2Bad('HEADERS on an even stream id', [h2Frame(H2.HEADERS, END_HEADERS | END_STREAM, 2, Buffer.from([0x82]))]),
    () => h2Bad('DATA on stream 0', [h2Frame(H2.DATA, 0, 0, bytes(10))]),
    () => h2Bad('frame length 16 MiB - 1', [h2Frame(H2.DATA, 0, 1, bytes(100), 0xffffff)]),
    () => h2Bad('SETTINGS of 5 bytes', [h2Frame(H2.SETTINGS, 0, 0, bytes(5))]),
    () => h2Bad('PING of 7 bytes', [h2Frame(H2.PING, 0, 0, bytes(7))]),
    () => h2Bad('WINDOW_UPDATE of 0 on the connection', [h2Frame(H2.WINDOW_UPDATE, 0, 0, Buffer.alloc(4))]),
    () =>
      h2Bad('CONTINUATION with no HEADERS before it', [h2Frame(H2.CONTINUATION, END_HEADERS, 1, Buffer.from([0x82]))]),
    () => ({
      category: 'HTTP/2 frames',
      detail: 'HEADERS without END_HEADERS, then nothing',
      layer: 'tls',
      tls: h2,
      bytes: Buffer.concat([H2_PREFACE, settings, h2Frame(H2.HEADERS, END_STREAM, 1, Buffer.from([0x82, 0x86]))]),
      expect: 'goaway',
    }),
  ];
  return Array.from({ length: rounds * generators.length }, (_, i) =>
    (generators[i % generators.length] as () => TlsCase)(),
  );
}
