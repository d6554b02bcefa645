/**
 * The fan-out's write to a socket: the chunk goes straight to the socket's libuv handle, as node's
 * own `socket.write` does in the end, without the Writable bookkeeping around it (the write
 * request's callback, the state's length and buffer, the `afterWrite` tick). It is taken only when
 * the Writable holds nothing (not corked, nothing queued): then no write of node's can be waiting
 * to go before this one, and libuv keeps the order of everything written to the handle after it.
 *
 * Why: one write per subscriber is all a lone publication costs, and the syscall is most of it.
 * Around it, node's stream machinery (the write request, the Writable's state, the callback and
 * its tick) was about a micro-second of a 12 to 16 µs write to a loopback socket: more than all
 * the rest of what the hub does per delivery (profile of `node scripts/lone-publication.mjs`,
 * which also gives the hub's CPU per delivery with and without this path, against a bare
 * `socket.write` loop, the raw `ws` reference's way, over the same 10,000 sockets).
 *
 * What the Writable no longer sees, this module counts. A write the kernel took at once (the
 * usual case) leaves nothing behind. One it could not take whole stays queued in libuv: its bytes
 * count in `pendingBytes` (the queue bound adds them: guarantee 4) until it completes, and the
 * socket emits 'drain' when the last one did and the Writable holds nothing either, so a writer
 * waiting for the client to read (drain.ts) wakes as it would for node's own writes. A failed
 * write destroys the socket with the error, as node's would.
 *
 * When the native write is built (native/herald-write.c, `npm run build`) and libuv holds nothing
 * for the socket either, the chunk goes to the socket's descriptor by one `send(2)` from C, and
 * only what the kernel did not take goes to the handle. That skips node's StreamBase and libuv's
 * try-write around the syscall: 4-9 % of the hub's CPU per delivery of a lone publication on the
 * bench machine (`node scripts/lone-publication.mjs` compares the ways in one process). Without
 * the module, or with `HERALD_NATIVE_WRITES=0`, the handle takes every direct write.
 *
 * A fan-out (a publication's subscribers, the end of a turn's batches) runs in `gatherWrites`:
 * its native writes wait in a gather and leave by one call into C per `GATHER_MAX`, a loop of
 * `send(2)` with no JavaScript between them, which took 16 % off the hub's CPU per delivery of a
 * lone publication against one call per socket (`HERALD_GATHER_WRITES=0`) on the bench machine,
 * in one process (a best case; docs/benchmarks.md, "Gathered writes").
 *
 * A TLS socket keeps node's write: its handle encrypts, and what it queues is its own. The path
 * needs node's `stream_wrap` binding for the write requests (`process.binding('stream_wrap')`,
 * which Node 20 offers); where that is missing, or with `HERALD_DIRECT_WRITES=0`, every write is a
 * plain `socket.write`.
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import { getSystemErrorName } from 'node:util';

/** A libuv write request as node's `stream_wrap` binding makes it. */
interface WriteRequest {
  oncomplete: (this: WriteRequest, status: number) => void;
  /** Bytes this request counts in `pendingBytes` while libuv holds it. */
  bytes: number;
  /** Keeps the chunk alive while libuv still writes it. */
  buffer: Buffer | null;
  socket: Duplex | null;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

interface StreamHandle {
  writeBuffer(request: WriteRequest, chunk: Buffer): number;
  /** The descriptor (-1 where there is none, as on Windows). */
  readonly fd?: number;
}

/** native/herald-write.c: the bytes the kernel took, or -errno. */
interface NativeWrite {
  write(fd: number, chunk: Uint8Array): number;
  /** `chunks[which[i]]` to `fds[i]` for i < count, each result to `results[i]`; how many were not whole. */
  writeEach?(fds: Int32Array, which: Uint8Array, chunks: Uint8Array[], count: number, results: Int32Array): number;
}

/** On each socket: bytes written directly that libuv has not handed to the kernel yet. */
const PENDING = Symbol('herald.directPending');
/** On each socket: its descriptor, read once (the handle's `fd` is a call into C++ each time). */
const FD = Symbol('herald.fd');
/** On each socket: the number of the gather its last gathered write is in (see `gatherWrites`). */
const GATHERED = Symbol('herald.gathered');
type Direct = Duplex & {
  _handle?: StreamHandle | null;
  encrypted?: boolean;
  [PENDING]?: number;
  [FD]?: number;
  [GATHERED]?: number;
};

const binding = loadBinding();
let enabled = binding !== undefined && process.env['HERALD_DIRECT_WRITES'] !== '0';
const native = loadNativeWrite();
let nativeEnabled = native !== undefined && process.env['HERALD_NATIVE_WRITES'] !== '0';
/** `send(2)`'s "try again": the socket's buffer is full. */
const EAGAIN = -constants.errno.EAGAIN;

/** Whether writes go to the handle directly in this process (false: plain `socket.write`). */
export function directWritesOn(): boolean {
  return enabled;
}

/**
 * Turns direct writes on or off for this process, and says whether they are on (never without
 * the binding): for measurements that compare both in one run (`scripts/lone-publication.mjs`).
 */
export function setDirectWrites(on: boolean): boolean {
  enabled = on && binding !== undefined;
  return enabled;
}

/** Whether direct writes go to the descriptor by the native write (false: to the handle). */
export function nativeWritesOn(): boolean {
  return enabled && nativeEnabled;
}

/** Turns the native write on or off, and says whether it is on: for measurements, as above. */
export function setNativeWrites(on: boolean): boolean {
  nativeEnabled = on && native !== undefined;
  return nativeEnabled;
}

/** The module `npm run build` compiles (scripts/build-native.mjs); undefined when it was not built. */
function loadNativeWrite(): NativeWrite | undefined {
  try {
    // The same path from src/transports and from dist/transports.
    const loaded = createRequire(import.meta.url)('../../native/build/herald-write.node') as Partial<NativeWrite>;
    return typeof loaded.write === 'function' ? (loaded as NativeWrite) : undefined;
  } catch {
    return undefined;
  }
}

function loadBinding(): StreamWrapBinding | undefined {
  try {
    const candidate = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding(
      'stream_wrap',
    );
    const { WriteWrap, streamBaseState, kLastWriteWasAsync } = candidate;
    if (typeof WriteWrap !== 'function' || !(streamBaseState instanceof Int32Array)) return undefined;
    if (typeof kLastWriteWasAsync !== 'number') return undefined;
    return { WriteWrap, streamBaseState, kLastWriteWasAsync };
  } catch {
    return undefined;
  }
}

/** Writes `chunk` to `socket`: to its handle when nothing waits in its Writable, else `socket.write`. */
export function writeDirect(socket: Duplex, chunk: Buffer): void {
  const direct = socket as Direct;
  // A write of this socket's that waits in the gather goes first, whatever way this one goes.
  settleGathered(socket);
  const handle = direct._handle;
  if (
    !enabled ||
    binding === undefined ||
    handle === undefined ||
    handle === null ||
    typeof handle.writeBuffer !== 'function' ||
    socket.writableLength !== 0 ||
    socket.writableCorked !== 0 ||
    !socket.writable ||
    direct.encrypted === true
  ) {
    socket.write(chunk);
    return;
  }
  if (nativeEnabled && native !== undefined && !direct[PENDING]) {
    // Nothing queued anywhere for this socket: the descriptor's next bytes are these.
    const fd = (direct[FD] ??= handle.fd ?? -1);
    if (fd >= 0 && gathering > 0 && gatherEach) {
      addToGather(direct, fd, chunk);
      return;
    }
    if (fd >= 0) {
      const written = native.write(fd, chunk);
      if (written === chunk.length) return;
      if (written < 0 && written !== EAGAIN) {
        socket.destroy(writeError(written));
        return;
      }
      // The kernel took part or nothing: the handle queues the rest, as after libuv's own try-write.
      if (written > 0) chunk = chunk.subarray(written);
    }
  }
  toHandle(direct, handle, chunk);
}

/** Writes `chunk` to the socket's handle, which queues what the kernel does not take at once. */
function toHandle(socket: Direct, handle: StreamHandle, chunk: Buffer): void {
  // Direct writes are on only with the binding (`enabled`).
  const wrap = binding as StreamWrapBinding;
  const request = (spare ??= newRequest(wrap));
  const error = handle.writeBuffer(request, chunk);
  if (error === 0 && wrap.streamBaseState[wrap.kLastWriteWasAsync] === 0) return;
  // libuv may hold this request now: the next write takes a new one.
  spare = undefined;
  if (error !== 0) {
    socket.destroy(writeError(error));
    return;
  }
  // The kernel did not take it all: libuv holds it, and calls `onComplete` when it is written.
  request.bytes = chunk.length;
  request.buffer = chunk;
  request.socket = socket;
  socket[PENDING] = (socket[PENDING] ?? 0) + chunk.length;
}

/**
 * The request of the next direct write. Node binds a request to the write only when the kernel
 * does not take the whole chunk at once; until then the same object serves write after write,
 * which saves creating one per subscriber (about a fifth of what node's own write adds to the
 * syscall, in a profile of `scripts/lone-publication.mjs`).
 */
let spare: WriteRequest | undefined;

function newRequest(from: StreamWrapBinding): WriteRequest {
  const request = new from.WriteWrap();
  request.oncomplete = onComplete;
  request.bytes = 0;
  request.buffer = null;
  request.socket = null;
  return request;
}

// ---- Gathered writes: a fan-out's native writes in one call ------------------------------------

/** The most writes one gather holds before they leave: bounds what waits behind the loop's JavaScript. */
export const GATHER_MAX = 256;
/** The most distinct chunks one gather holds (native/herald-write.c, MAX_CHUNKS). */
const GATHER_CHUNKS = 8;
const gatherFds = new Int32Array(GATHER_MAX);
const gatherWhich = new Uint8Array(GATHER_MAX);
const gatherResults = new Int32Array(GATHER_MAX);
const gatherSockets: (Direct | undefined)[] = new Array<Direct | undefined>(GATHER_MAX).fill(undefined);
const gatherChunks: Buffer[] = [];
/** Writes in the gather. */
let gathered = 0;
/** The gather's number: a socket whose `GATHERED` equals it has a write in it (no clearing per socket). */
let gather = 1;
/** Open `gatherWrites` scopes. */
let gathering = 0;
let gatherEach = native?.writeEach !== undefined && process.env['HERALD_GATHER_WRITES'] !== '0';

/** Whether a fan-out's native writes leave in one call per `GATHER_MAX` (`gatherWrites`). */
export function gatherWritesOn(): boolean {
  return nativeWritesOn() && gatherEach;
}

/** Turns gathering on or off, and says whether it is on: for measurements, as above. */
export function setGatherWrites(on: boolean): boolean {
  gatherEach = on && native?.writeEach !== undefined;
  return gatherEach;
}

/**
 * Runs `fanOut`, a loop that writes to many sockets (a publication's subscribers, the end of a
 * turn's batches), gathering its native writes: they leave by one call into C per `GATHER_MAX`
 * of them, when the gather is full and when `fanOut` returns, instead of one call per socket.
 *
 * Why: a lone publication to 10,000 subscribers is 10,000 sends, and the kernel's share of each
 * grows when JavaScript runs between them (what each delivery touches evicts the socket and TCP
 * state the next send needs). In one call the sends follow each other.
 *
 * What keeps the order: a socket's gathered write leaves before anything else is written to it.
 * Another direct write to it flushes the gather first, and so does `settleGathered`, which the
 * writers call before they write to a socket by other means (turn-batch.ts: corked writes,
 * `releaseHeld` before `ws` writes its close frame). A socket destroyed meanwhile is skipped: its
 * descriptor is read again from its live handle when the gather leaves, never reused.
 */
export function gatherWrites(fanOut: () => void): void {
  gathering++;
  try {
    fanOut();
  } finally {
    if (--gathering === 0 && gathered > 0) flushGathered();
  }
}

/** Writes now what the gather holds if `socket` has a write in it: call before writing to it otherwise. */
export function settleGathered(socket: Duplex): void {
  if ((socket as Direct)[GATHERED] === gather && gathered > 0) flushGathered();
}

function addToGather(socket: Direct, fd: number, chunk: Buffer): void {
  let which = gatherChunks.length - 1;
  if (which < 0 || gatherChunks[which] !== chunk) {
    which = gatherChunks.indexOf(chunk);
    if (which < 0) {
      if (gatherChunks.length === GATHER_CHUNKS) flushGathered();
      which = gatherChunks.push(chunk) - 1;
    }
  }
  const i = gathered++;
  gatherFds[i] = fd;
  gatherWhich[i] = which;
  gatherSockets[i] = socket;
  socket[GATHERED] = gather;
  if (gathered === GATHER_MAX) flushGathered();
}

/** Sends the gather's writes in one native call, then deals with those the kernel did not take whole. */
function flushGathered(): void {
  const count = gathered;
  const chunks = gatherChunks;
  gathered = 0;
  // A new number: the sockets of this gather no longer count as gathered, once their writes left.
  gather = (gather + 1) & 0x3fffffff || 1;
  for (let i = 0; i < count; i++) {
    // Destroyed since it was gathered: its descriptor is closed and may be another's by now.
    const handle = gatherSockets[i]!._handle;
    if (handle === null || handle === undefined) gatherFds[i] = -1;
  }
  const incomplete = (native as Required<NativeWrite>).writeEach(gatherFds, gatherWhich, chunks, count, gatherResults);
  if (incomplete > 0) {
    for (let i = 0; i < count; i++) {
      const chunk = chunks[gatherWhich[i]!]!;
      const written = gatherResults[i]!;
      if (written === chunk.length) continue;
      const socket = gatherSockets[i]!;
      if (written < 0 && written !== EAGAIN) socket.destroy(writeError(written));
      else if (socket._handle) toHandle(socket, socket._handle, written > 0 ? chunk.subarray(written) : chunk);
    }
  }
  gatherSockets.fill(undefined, 0, count);
  // Cleared only now: nothing below the native call adds to the gather (toHandle, destroy).
  chunks.length = 0;
}

/** Bytes written by `writeDirect` that libuv still holds (none once the kernel took them). */
export function pendingBytes(socket: Duplex): number {
  return (socket as Direct)[PENDING] ?? 0;
}

function onComplete(this: WriteRequest, status: number): void {
  const socket = this.socket as Direct;
  this.buffer = null;
  this.socket = null;
  const pending = (socket[PENDING] ?? 0) - this.bytes;
  socket[PENDING] = pending;
  if (socket.destroyed) return;
  if (status < 0) {
    socket.destroy(writeError(status));
    return;
  }
  if (pending === 0 && socket.writableLength === 0) socket.emit('drain');
}

/** A libuv error code as node reports a failed write: `write EPIPE`, with `code`, `errno`, `syscall`. */
function writeError(errno: number): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`write ${code}`), { code, errno, syscall: 'write' });
}
