/**
 * The malformed-frame generator: every case is a byte sequence a hostile or broken client could
 * send after a real handshake, with the close code(s) RFC 6455 and PROTOCOL.md section 5 say the
 * hub must answer with. Seeded, so a failure is reproduced by its seed and index.
 */
import { Opcode, closePayload, frame } from './raw-ws.ts';

export interface FrameCase {
  readonly category: string;
  readonly detail: string;
  /** Bytes to write, in order (each element one write). */
  readonly chunks: readonly Buffer[];
  /** Acceptable close codes. */
  readonly expect: readonly number[];
  /** Send a valid `connect` first, so the case hits a session rather than a fresh socket. */
  readonly connected: boolean;
}

/** mulberry32: small, fast, good enough to spread cases; not for secrets. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INVALID_UTF8: readonly number[][] = [
  [0x80], // lone continuation byte
  [0xbf, 0x80],
  [0xc0, 0xaf], // overlong '/'
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf], // overlong
  [0xed, 0xa0, 0x80], // UTF-16 surrogate
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xf5, 0x80, 0x80, 0x80],
  [0xff],
  [0xfe, 0xfe],
  [0xe2, 0x82, 0x41], // truncated sequence followed by ASCII
  [0xf0, 0x9f, 0x98], // truncated at the end
];

const RESERVED_OPCODES = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15];
/** Close codes a peer may not send (RFC 6455 section 7.4; ws's isValidStatusCode). */
const INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];

export interface FrameCaseLimits {
  /** The hub's `maxPayload` (HERALD_MAX_MESSAGE_BYTES + 16 KiB). */
  readonly maxPayload: number;
  /** `ws` maxFragments as the hub sets it. */
  readonly maxFragments: number;
}

export function* frameCases(seed: number, count: number, limits: FrameCaseLimits): Generator<FrameCase> {
  const rnd = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const bytes = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = int(0, 255);
    return b;
  };
  const ascii = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(int(0x20, 0x7e));
    return s;
  };
  /** Splits bytes into 1 to 4 writes, so frame boundaries and TCP segments do not line up. */
  const split = (all: Buffer): Buffer[] => {
    const parts: Buffer[] = [];
    let rest = all;
    const n = int(1, 4);
    for (let i = 1; i < n && rest.length > 1; i++) {
      const at = int(1, rest.length - 1);
      parts.push(rest.subarray(0, at));
      rest = rest.subarray(at);
    }
    parts.push(rest);
    return parts;
  };
  const generators: Array<() => Omit<FrameCase, 'connected'>> = [
    () => {
      const opcode = pick(RESERVED_OPCODES);
      return {
        category: 'bad opcode',
        detail: `opcode ${opcode}`,
        chunks: split(frame({ opcode, payload: bytes(int(0, 40)), fin: rnd() < 0.8 })),
        expect: [1002],
      };
    },
    () => {
      const bad = Buffer.from(pick(INVALID_UTF8));
      const before = Buffer.from(`{"id":1,"method":"ping","params":{"x":"${ascii(int(0, 20))}`);
      const payload = Buffer.concat([before, bad, Buffer.from('"}}')]);
      if (rnd() < 0.5) {
        return {
          category: 'bad UTF-8',
          detail: `text frame with ${bad.toString('hex')}`,
          chunks: split(frame({ opcode: Opcode.Text, payload })),
          expect: [1007],
        };
      }
      // The same across fragments: validity is a property of the whole message.
      const at = int(1, payload.length - 1);
      return {
        category: 'bad UTF-8',
        detail: `fragmented text with ${bad.toString('hex')}`,
        chunks: [
          frame({ opcode: Opcode.Text, payload: payload.subarray(0, at), fin: false }),
          frame({ opcode: Opcode.Continuation, payload: payload.subarray(at) }),
        ],
        expect: [1007],
      };
    },
    () => {
      const bad = Buffer.from(pick(INVALID_UTF8));
      return {
        category: 'bad UTF-8',
        detail: `close reason with ${bad.toString('hex')}`,
        chunks: [
          frame({ opcode: Opcode.Close, payload: closePayload(1000, Buffer.concat([Buffer.from('bye'), bad])) }),
        ],
        expect: [1007],
      };
    },
    () => {
      // A length that claims more than the hub takes: refused from the header alone.
      const declared = rnd() < 0.7 ? int(limits.maxPayload + 1, limits.maxPayload * 64) : int(2 ** 31, 2 ** 52);
      const body = bytes(int(0, 2048));
      return {
        category: 'oversized',
        detail: `declared ${declared} bytes`,
        chunks: split(frame({ opcode: pick([Opcode.Text, Opcode.Binary]), payload: body, declaredLength: declared })),
        expect: [1009],
      };
    },
    () => {
      const header = Buffer.from([0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      return { category: 'oversized', detail: '64-bit length above 2^53', chunks: [header], expect: [1009] };
    },
    () => {
      // Fragments that are each small but add up past maxPayload.
      const size = int(8_192, 32_768);
      const n = Math.ceil(limits.maxPayload / size) + 1;
      const chunks = [frame({ opcode: Opcode.Text, payload: Buffer.alloc(size, 0x20), fin: false })];
      for (let i = 1; i < n; i++)
        chunks.push(frame({ opcode: Opcode.Continuation, payload: Buffer.alloc(size, 0x20), fin: false }));
      return { category: 'fragment flood', detail: `${n} x ${size} bytes`, chunks, expect: [1009] };
    },
    () => {
      // Many tiny fragments: each costs the hub an object, so their number is capped too.
      const n = limits.maxFragments + int(1, 200);
      const parts = [frame({ opcode: Opcode.Text, payload: '[', fin: false })];
      for (let i = 1; i < n; i++) parts.push(frame({ opcode: Opcode.Continuation, payload: ' ', fin: false }));
      return {
        category: 'fragment flood',
        detail: `${n} one-byte fragments`,
        chunks: [Buffer.concat(parts)],
        expect: [1008],
      };
    },
    () => ({
      category: 'fragment flood',
      detail: 'continuation without a start',
      chunks: [frame({ opcode: Opcode.Continuation, payload: ascii(int(0, 30)), fin: rnd() < 0.5 })],
      expect: [1002],
    }),
    () => ({
      category: 'fragment flood',
      detail: 'new message inside a fragmented one',
      chunks: [
        frame({ opcode: Opcode.Text, payload: '{"id":1,', fin: false }),
        frame({ opcode: pick([Opcode.Text, Opcode.Binary]), payload: '"method":"ping"}' }),
      ],
      expect: [1002],
    }),
    () => ({
      category: 'unmasked',
      detail: 'client frame without a mask',
      chunks: [
        frame({
          opcode: pick([Opcode.Text, Opcode.Binary, Opcode.Ping]),
          payload: '{"id":1,"method":"ping"}',
          mask: false,
        }),
      ],
      expect: [1002],
    }),
    () => {
      const rsv = int(1, 7);
      return {
        category: 'bad RSV',
        detail: `RSV bits ${rsv.toString(2).padStart(3, '0')}`,
        chunks: [
          frame({
            opcode: pick([Opcode.Text, Opcode.Binary, Opcode.Ping, Opcode.Continuation]),
            payload: '{"id":1,"method":"ping"}',
            rsv,
          }),
        ],
        expect: [1002],
      };
    },
    () => {
      const opcode = pick([Opcode.Ping, Opcode.Pong, Opcode.Close]);
      const size = int(126, 1000);
      return {
        category: 'big control',
        detail: `control opcode ${opcode} with ${size} bytes`,
        chunks: split(
          frame({ opcode, payload: opcode === Opcode.Close ? closePayload(1000, ascii(size - 2)) : bytes(size) }),
        ),
        expect: [1002],
      };
    },
    () => ({
      category: 'big control',
      detail: 'fragmented control frame',
      chunks: [
        frame({ opcode: pick([Opcode.Ping, Opcode.Pong, Opcode.Close]), payload: bytes(int(0, 10)), fin: false }),
      ],
      expect: [1002],
    }),
    () => ({
      category: 'bad close',
      detail: 'close with a one-byte payload',
      chunks: [frame({ opcode: Opcode.Close, payload: bytes(1) })],
      expect: [1002],
    }),
    () => {
      const code = pick(INVALID_CLOSE_CODES);
      return {
        category: 'bad close',
        detail: `close code ${code}`,
        chunks: [frame({ opcode: Opcode.Close, payload: closePayload(code, ascii(int(0, 20))) })],
        expect: [1002],
      };
    },
    () => ({
      category: 'protocol',
      detail: 'binary frame',
      chunks: [frame({ opcode: Opcode.Binary, payload: bytes(int(1, 200)) })],
      expect: [4002],
    }),
    () => {
      const texts = [
        ascii(int(1, 50)),
        '',
        '{"id":1,"method":"ping"',
        '[]',
        'null',
        '"connect"',
        '42',
        '{"id":0,"method":"ping"}',
        '{"id":-3,"method":"ping"}',
        '{"id":1.5,"method":"ping"}',
        '{"id":"1","method":"ping"}',
        '{"id":9007199254740993,"method":"ping"}',
        '{"id":1,"method":"nope"}',
        '{"id":1,"method":"__proto__"}',
        '{"id":1,"method":"constructor"}',
        '{"id":1}',
        '{"method":"ping"}',
        '{"id":1,"method":["ping"]}',
        `{"id":1,"method":"${'x'.repeat(int(100, 5000))}"}`,
        '\u0000\u0000',
        '{"id":1,"method":"ping"}garbage',
      ];
      const text = pick(texts);
      return {
        category: 'protocol',
        detail: `text ${JSON.stringify(text.slice(0, 40))}`,
        chunks: [frame({ opcode: Opcode.Text, payload: text })],
        expect: [4002],
      };
    },
  ];
  for (let i = 0; i < count; i++) {
    const gen = generators[i % generators.length] as () => Omit<FrameCase, 'connected'>;
    yield { ...gen(), connected: rnd() < 0.5 };
  }
}
