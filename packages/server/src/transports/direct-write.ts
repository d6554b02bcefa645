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
 * A TLS socket keeps node's write: its handle encrypts, and what it queues is its own. The path
 * needs node's `stream_wrap` binding for the write requests (`process.binding('stream_wrap')`,
 * which Node 20 offers); where that is missing, or with `HERALD_DIRECT_WRITES=0`, every write is a
 * plain `socket.write`.
 */
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
}

/** On each socket: bytes written directly that libuv has not handed to the kernel yet. */
const PENDING = Symbol('herald.directPending');
type Direct = Duplex & { _handle?: StreamHandle | null; encrypted?: boolean; [PENDING]?: number };

const binding = loadBinding();
let enabled = binding !== undefined && process.env['HERALD_DIRECT_WRITES'] !== '0';

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
  const handle = (socket as Direct)._handle;
  if (
    !enabled ||
    binding === undefined ||
    handle === undefined ||
    handle === null ||
    typeof handle.writeBuffer !== 'function' ||
    socket.writableLength !== 0 ||
    socket.writableCorked !== 0 ||
    !socket.writable ||
    (socket as Direct).encrypted === true
  ) {
    socket.write(chunk);
    return;
  }
  const request = (spare ??= newRequest(binding));
  const error = handle.writeBuffer(request, chunk);
  if (error === 0 && binding.streamBaseState[binding.kLastWriteWasAsync] === 0) return;
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
  (socket as Direct)[PENDING] = ((socket as Direct)[PENDING] ?? 0) + chunk.length;
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
