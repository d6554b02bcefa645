/**
 * Write batching per event-loop tick. A burst puts several frames on one socket in the same tick
 * (a broker delivers a batch, a loop publishes several); written one by one, each costs a
 * syscall. Here a socket's first frame of a tick is written at once, exactly as an unbatched
 * write would be, so a lone publication gets no added latency and no batching overhead. A second
 * frame in the same tick corks the socket, and every socket corked in the tick is uncorked
 * together once the tick's synchronous work and microtasks are done: the rest of the burst leaves
 * in one writev. Frames keep their order (one stream per socket, first in first out), and bytes
 * waiting for the uncork count in `writableLength`, so the queue bound (guarantee 4) sees them
 * exactly as it sees bytes the kernel did not take yet.
 */
import type { Duplex } from 'node:stream';

/** On each socket: the number of the last tick it was written in (no allocation per tick). */
const WRITTEN_IN = Symbol('herald.writtenInTick');
type Stamped = Duplex & { [WRITTEN_IN]?: number };

/** This tick's number; only equality matters, so it wraps while still a small integer. */
let tick = 0;
/** Sockets this module corked in this tick. */
let corked: Duplex[] = [];
let scheduled = false;

function endOfTick(): void {
  scheduled = false;
  tick = (tick + 1) & 0x3fffffff;
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
}

/** Marks `socket` as written in this tick; true when it is the tick's first write to it. */
function firstInTick(socket: Duplex): boolean {
  const stamped = socket as Stamped;
  if (stamped[WRITTEN_IN] === tick) return false;
  stamped[WRITTEN_IN] = tick;
  if (!scheduled) {
    scheduled = true;
    process.nextTick(endOfTick);
  }
  return true;
}

function corkForTick(socket: Duplex): void {
  // Corked already (node's HTTP response corks for its own writes): the chunk joins that batch.
  if (socket.writableCorked === 0) {
    socket.cork();
    corked.push(socket);
  }
}

/** Writes `chunk` to `socket`; the socket's further writes in this tick leave together, in order. */
export function writeBatched(socket: Duplex, chunk: Buffer): void {
  if (!firstInTick(socket)) corkForTick(socket);
  socket.write(chunk);
}

/**
 * Writes `chunk` with the socket's batch at the end of this tick, even as the tick's first write:
 * for command answers, which often come in pairs (a pipelined connect and subscribe are answered
 * in one tick, one write for both) and for which microseconds do not matter.
 */
export function writeAtTickEnd(socket: Duplex, chunk: Buffer): void {
  firstInTick(socket);
  corkForTick(socket);
  socket.write(chunk);
}
