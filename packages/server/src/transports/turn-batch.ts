/**
 * Write batching per event-loop turn. Everything that reaches the hub in one turn (HTTP
 * publishes, a broker read, client commands, ingress messages: all the I/O callbacks of one poll
 * phase) and is bound for one socket leaves in one write when the turn ends (a `setImmediate`,
 * which runs right after the poll phase).
 *
 * Two ways to hold a socket's batch, by who writes to the socket:
 * - Held (`writeBatched`, `writeAtTurnEnd`): for frames whose writer owns the socket (a
 *   WebSocket's publications, answers, pushes and pings; an SSE stream's publications written to
 *   its socket as prebuilt HTTP chunks). They wait in a list and leave as one buffer, joined once
 *   for all the sockets whose turn got the same frames (every subscriber of a channel does): a
 *   corked `writev` of fifty frames costs a socket about twice the CPU of one write of the same
 *   bytes (`node scripts/writev-vs-concat.mjs`); with it the hub's CPU per delivery fell by a
 *   fifth to a third at 16 to 40 frames a turn (in one process, a best case:
 *   `node scripts/compare-builds.mjs`; docs/benchmarks.md). The writer's other writes (`ws`'s
 *   close frame, an SSE response's own events) come after `releaseHeld`, or after `batchWrite`,
 *   which releases the list first; a gate (`gateWrites`) drops what would follow a WebSocket's
 *   close frame.
 * - Corked (`batchWrite` right before the write): for a socket others write to as well
 *   (engine.io's; an SSE response's writes through `res.write`). It is corked at its first write
 *   of the turn and uncorked at the end, so whoever writes to it joins the same queue, in order,
 *   and the turn's chunks leave in one `writev`.
 *
 * It regulates itself. An idle hub writes a lone publication at once, exactly as an unbatched
 * write would: while the previous turn batched nothing, a socket's first write of the turn is not
 * held. Once a turn did batch (some socket got two writes), the next turns hold from the first
 * write, so a busy hub pays one write per socket per turn; and a hub that falls behind gathers
 * more per poll phase, so its batches grow and it catches up. A hub that wrote nothing for
 * `IDLE_AFTER_MS` is idle again whatever its last writing turn did: the first publication after a
 * burst leaves at once too (held, it cost the hub 2 to 4 % more CPU per delivery than a lone
 * publication after a lone one, 10,000 subscribers: `node scripts/after-burst.mjs`). Frames keep
 * their order (one stream per socket, first in first out).
 *
 * HTTP answers (`answerInTurn`: the server API's, Pusher's HTTP API's, Durable Streams' appends)
 * follow the same rhythm: under load, a turn's answers are given back to back at its end.
 *
 * A hub worker (`herald serve --workers`) stores its publishes in the primary: a turn that
 * forwarded some waits for their replies, due within microseconds, before it ends (`holdTurnFor`),
 * so their publications leave in its writes, as one process's leave in the turn that took the
 * request. It never waits for input it did not ask for (holding batches for the next turn left the
 * subscribers idle: docs/scale-out.md, "Every core").
 *
 * A socket's batch leaves early once it holds `flushAt` bytes (`flushThreshold` of the queue
 * bound: a quarter of it, at most 64 KiB): a turn that writes much to one socket (a replay page,
 * a flood) offers the kernel a large write at a time and never holds more back. The bytes held
 * count in what the queue bound reads (guarantee 4: `writableLength`, plus `heldBytes` for what
 * waits in a list); kept to a quarter of the bound, they cannot make a healthy client that got a
 * burst in one turn look slow, while a client that stops reading still does.
 */
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { gatherWrites, pendingBytes, settleGathered, writeDirect } from './direct-write.js';

/** On each socket: the number of the last turn it was written in (no allocation per turn). */
const WRITTEN_IN = Symbol('herald.writtenInTurn');
/** On each socket: bytes held (in `PARTS`, or corked) in the turn it was last written in. */
const HELD = Symbol('herald.heldForTurn');
/** On each socket: this module corked it and has not uncorked it yet. */
const CORKED = Symbol('herald.corkedForTurn');
/** On each socket: the frames held for the end of the turn, not yet written. */
const PARTS = Symbol('herald.partsForTurn');
/** On each socket: whether what is held may still be written (`gateWrites`). */
const GATE = Symbol('herald.writeGate');
type Stamped = Duplex & {
  [WRITTEN_IN]?: number;
  [HELD]?: number;
  [CORKED]?: boolean;
  [PARTS]?: Buffer[] | undefined;
  [GATE]?: WriteGate;
};

/** What a socket's held frames are written for: a WebSocket (`ws`'s) takes them only while open. */
export interface WriteGate {
  readonly readyState: number;
  readonly OPEN: number;
}

/**
 * Held frames are joined into one buffer while they average less than this: copying them costs
 * less than `writev`'s work per chunk. Larger ones (a replay of big publications) leave as a
 * `writev` of the frames themselves: a copy would only add memory, most of it for clients that
 * read slowly (`test/reliability/replay-bound.test.ts`).
 */
export const JOIN_BELOW = 4096;

/** The most a socket's batch holds before it leaves, whatever the queue bound. */
export const FLUSH_BYTES = 64 * 1024;

/** How much a socket's batch may hold for a client whose queue bound is `maxQueueBytes`. */
export function flushThreshold(maxQueueBytes: number): number {
  return Math.min(FLUSH_BYTES, Math.floor(maxQueueBytes / 4));
}

/** This turn's number; only equality matters, so it wraps while still a small integer. */
let turn = 0;
/** Sockets whose batch waits for the end of this turn (held or corked; one may appear twice). */
let waiting: Duplex[] = [];
/** The last batch of held frames joined into one buffer, shared by the sockets that got the same. */
let lastJoin: { parts: Buffer[]; joined: Buffer } | undefined;
let scheduled = false;
/** Whether this turn wrote to any socket through this module. */
let wrote = false;
/** Writes of this turn that were a socket's second or later (the batching that paid off). */
let batched = 0;
/** Whether the last turn batched anything: then first writes wait for the end of the turn too. */
let busy = false;
/** When the last turn that wrote ended, its turn-end writes done (`performance.now()`). */
let wroteEndedAt = 0;
/**
 * A pause in writing that makes a busy hub idle again. Under load the turns that write follow
 * each other within a millisecond; a hub whose publications come further apart than this does
 * not gather two in a turn anyway, so nothing is lost by writing its next one at once.
 */
export const IDLE_AFTER_MS = 50;

/** Pure: a write leaves at once only as the socket's first of a turn on a hub that is not busy. */
export function leavesAtOnce(firstInTurn: boolean, hubBusy: boolean): boolean {
  return firstInTurn && !hubBusy;
}

/** HTTP answers held for the end of this turn (`answerInTurn`), and how many this turn gave. */
let answers: (() => void)[] = [];
let answered = 0;
/** Whether the last turn gave more than one answer: then answers wait for the end of the turn. */
let answering = false;

function endOfTurn(): void {
  if (holdEnd()) return;
  scheduled = false;
  turn = (turn + 1) & 0x3fffffff;
  // Each policy learns only from turns that exercised it: a turn that only answered says nothing
  // about the sockets' load, nor one that only wrote about the answers' (a worker's turns
  // alternate between the two: its fan-outs would otherwise never count as busy).
  const turnWrote = wrote;
  if (wrote) busy = batched > 0;
  wrote = false;
  batched = 0;
  if (answered > 0) answering = answered > 1;
  answered = 0;
  const held = answers;
  answers = [];
  for (const answer of held) answer();
  const sockets = waiting;
  waiting = [];
  // One native call for the batches' writes (direct-write.ts, `gatherWrites`).
  gatherWrites(() => {
    for (const socket of sockets) release(socket as Stamped);
  });
  lastJoin = undefined;
  // Read after the releases, which are most of a busy turn's writing: a hub whose turn-end writes
  // take longer than the pause (10,000 sockets a publication) has not paused by the next turn.
  if (turnWrote) wroteEndedAt = performance.now();
}

/**
 * Replies due within microseconds: a worker's publishes to its primary (`holdTurnFor`). While some
 * of the turn's are unanswered, the turn's end waits for them, once and for `HOLD_MS` at most.
 */
export const HOLD_MS = 1;
/**
 * Holds are counted by epoch: a wait begins a new one, so a hold knows whether the end it would
 * delay is already waiting for it. `open`: unreleased holds of the current epoch; while the end
 * waits (`holdTimer` set), `waitingOn`: unreleased holds of the epoch before, the one it waits for.
 */
let holdEpoch = 0;
let open = 0;
let waitingOn = 0;
let holdTimer: NodeJS.Timeout | undefined;
/** The end that runs after a wait does not wait again. */
let waited = false;

/** Whether the turn's end waits: it runs again when the holds are released or `HOLD_MS` passed. */
function holdEnd(): boolean {
  if (holdTimer !== undefined) return true;
  if (waited) {
    waited = false;
    return false;
  }
  if (open === 0 || (waiting.length === 0 && answers.length === 0)) return false;
  holdEpoch++;
  waitingOn = open;
  open = 0;
  holdTimer = setTimeout(stopWaiting, HOLD_MS);
  return true;
}

/** The held end runs in the check phase of this loop iteration, after the replies' callbacks. */
function stopWaiting(): void {
  clearTimeout(holdTimer);
  holdTimer = undefined;
  waited = true;
  setImmediate(endOfTurn);
}

/**
 * Call when the hub asks for a reply that is due within microseconds and whose answer it will
 * write: a worker's publish to its primary, which stores it and sends back the publication and the
 * acknowledgement together. Call the returned function when the reply came (or failed).
 *
 * Why: without it a worker forwards a publish in one turn and writes its publication in a later
 * one, so at a given number of publishes in flight each of its writes to a subscriber carried
 * about half as many publications as one process's, which stores and writes in the turn that took
 * the request (docs/scale-out.md, "Every core"). With it, a turn that forwarded publishes ends
 * once their replies are in, so their publications leave in that turn's writes. Only a
 * turn that has writes or answers waiting waits: an idle hub's lone publish is forwarded, and its
 * reply written at once, as before. The wait covers the replies asked for before the turn's end
 * began to wait, never later ones (no chain of waits), and lasts `HOLD_MS` at most.
 */
export function holdTurnFor(): () => void {
  const epoch = holdEpoch;
  open++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (epoch === holdEpoch) open--;
    else if (holdTimer !== undefined && epoch === holdEpoch - 1 && --waitingOn === 0) stopWaiting();
  };
}

/** Writes what `socket` holds for the turn, or uncorks it: its batch leaves now. */
function release(socket: Stamped): void {
  settleGathered(socket);
  const parts = socket[PARTS];
  if (parts !== undefined) {
    const bytes = socket[HELD] ?? 0;
    socket[PARTS] = undefined;
    socket[HELD] = 0;
    const gate = socket[GATE];
    if (!socket.destroyed && !socket.writableEnded && (gate === undefined || gate.readyState === gate.OPEN)) {
      if (parts.length === 1) writeDirect(socket, parts[0]!);
      else if (bytes < parts.length * JOIN_BELOW) writeDirect(socket, joined(parts, bytes));
      else {
        socket.cork();
        for (const part of parts) socket.write(part);
        socket.uncork();
      }
    }
  }
  if (socket[CORKED] !== true) return;
  socket[CORKED] = false;
  socket[HELD] = 0;
  socket.uncork();
}

/**
 * `parts` as one buffer. The sockets are released in the order of their first write of the turn,
 * so the subscribers of a channel, which got the same frames, follow each other: the buffer
 * joined for the first is reused for the others (a comparison of references, not of bytes).
 */
function joined(parts: Buffer[], bytes: number): Buffer {
  const last = lastJoin;
  if (last !== undefined && last.parts.length === parts.length) {
    let same = true;
    for (let i = 0; i < parts.length && same; i++) same = parts[i] === last.parts[i];
    if (same) return last.joined;
  }
  lastJoin = { parts, joined: Buffer.concat(parts, bytes) };
  return lastJoin.joined;
}

/** Marks `socket` as written in this turn; true when it is the turn's first write to it. */
function firstInTurn(socket: Duplex): boolean {
  const stamped = socket as Stamped;
  if (!wrote) {
    // The turn's first write: once per turn, the clock says whether the hub paused since.
    wrote = true;
    if (busy && performance.now() - wroteEndedAt > IDLE_AFTER_MS) busy = false;
  }
  if (stamped[WRITTEN_IN] === turn) {
    batched++;
    return false;
  }
  stamped[WRITTEN_IN] = turn;
  if (!scheduled) {
    scheduled = true;
    setImmediate(endOfTurn);
  }
  return true;
}

/**
 * Corks `socket` for the turn, counting `bytes` as held; a batch that reached `flushAt` leaves
 * first, and so do frames held in a list (they were written before). A socket corked by someone
 * else (node's HTTP response corks for its own writes) is left to them: the chunk joins that batch.
 */
function corkForTurn(socket: Duplex, bytes: number, flushAt: number): void {
  const stamped = socket as Stamped;
  // A write of this turn that waits in the fan-out's gather goes before what the cork collects.
  settleGathered(socket);
  if (stamped[PARTS] !== undefined) release(stamped);
  if (stamped[CORKED] === true && (stamped[HELD] ?? 0) >= flushAt) release(stamped);
  if (stamped[CORKED] !== true && socket.writableCorked === 0) {
    socket.cork();
    stamped[CORKED] = true;
    stamped[HELD] = 0;
    waiting.push(socket);
  }
  if (stamped[CORKED] === true) stamped[HELD] = (stamped[HELD] ?? 0) + bytes;
}

/**
 * Holds `chunk` in `socket`'s list for the turn; a list that reached `flushAt` leaves first. On a
 * socket corked (by this module for a write of another kind, or by someone else) the chunk joins
 * the cork instead, which keeps the order of what is already there.
 */
function hold(socket: Duplex, chunk: Buffer, flushAt: number): void {
  const stamped = socket as Stamped;
  if (socket.writableCorked !== 0) {
    if (stamped[CORKED] === true) corkForTurn(socket, chunk.length, flushAt);
    else if (stamped[PARTS] !== undefined) release(stamped);
    else settleGathered(socket);
    socket.write(chunk);
    return;
  }
  let parts = stamped[PARTS];
  if (parts !== undefined && (stamped[HELD] ?? 0) >= flushAt) {
    release(stamped);
    parts = undefined;
  }
  if (parts === undefined) {
    stamped[PARTS] = parts = [];
    stamped[HELD] = 0;
    waiting.push(socket);
  }
  parts.push(chunk);
  stamped[HELD] = (stamped[HELD] ?? 0) + chunk.length;
}

/**
 * Call right before writing `bytes` to `socket` by any means (`socket.write`, an HTTP response on
 * it, engine.io): the write then joins the turn's batch for that socket (corked), or leaves at
 * once when the batching policy says so.
 */
export function batchWrite(socket: Duplex, bytes: number, flushAt: number): void {
  if (!leavesAtOnce(firstInTurn(socket), busy)) corkForTurn(socket, bytes, flushAt);
  else settleGathered(socket);
}

/**
 * Writes `chunk` as part of the turn's batch for `socket` (held: see the module's comment), or at
 * once when the batching policy says so. The writer lets what is held out (`releaseHeld`) before
 * it writes to the socket by any other means.
 */
export function writeBatched(socket: Duplex, chunk: Buffer, flushAt: number): void {
  if (leavesAtOnce(firstInTurn(socket), busy)) writeDirect(socket, chunk);
  else hold(socket, chunk, flushAt);
}

/**
 * Writes `chunk` with the socket's batch at the end of this turn, even as the turn's first write:
 * for command answers, which often come in pairs (a pipelined connect and subscribe are answered
 * in one turn, one write for both) and for which microseconds do not matter.
 */
export function writeAtTurnEnd(socket: Duplex, chunk: Buffer, flushAt: number): void {
  firstInTurn(socket);
  hold(socket, chunk, flushAt);
}

/**
 * Writes now what `socket` holds for the turn, and its write that waits in a fan-out's gather
 * (direct-write.ts). Its owner calls it before writing to the socket by other means (`ws`'s close
 * frame) and before waiting for the client to take what it was sent.
 */
export function releaseHeld(socket: Duplex): void {
  if ((socket as Stamped)[PARTS] !== undefined) release(socket as Stamped);
  else settleGathered(socket);
}

/**
 * Bytes written or held for `socket` that are not in its `writableLength`: the queue bound adds
 * them. The frames the turn holds in a list, and direct writes libuv has not written yet.
 */
export function heldBytes(socket: Duplex): number {
  const stamped = socket as Stamped;
  return (stamped[PARTS] === undefined ? 0 : (stamped[HELD] ?? 0)) + pendingBytes(socket);
}

/**
 * Makes a socket's held frames leave only while `gate` (its WebSocket) is open: `ws` answers the
 * client's close frame with its own, written to the socket directly, and nothing may follow that
 * frame (RFC 6455 section 5.5.1).
 */
export function gateWrites(socket: Duplex, gate: WriteGate): void {
  (socket as Stamped)[GATE] = gate;
}

/** What an answer is given on: an HTTP response, destroyed if giving the answer throws. */
interface Answerable {
  destroy(error?: Error): unknown;
}

/**
 * Gives an HTTP answer (`answer` writes and ends `res`) now, or with the others of this turn when
 * the turn ends. Node writes a response as it ends; on loopback (a load balancer, a backend on the
 * same machine) each such write wakes the client's process again, and answers given one by one
 * between the handling of the next requests cost twice the CPU of the same answers given back to
 * back, which wake it once (measured: `POST /api/publish` with no subscriber, 64 µs against 39 µs
 * per request). It regulates itself like the writes: an idle hub answers at once, and answers wait
 * for the end of the turn only while the previous turn gave more than one. For answers that are
 * the handler's last act: nothing may depend on the response having been sent.
 */
export function answerInTurn(res: Answerable, answer: () => void): void {
  answered++;
  if (answering) answers.push(() => give(res, answer));
  else give(res, answer);
  // The end of the turn gives what waits, and after a second answer decides whether the next turn's wait.
  if (!scheduled && (answering || answered > 1)) {
    scheduled = true;
    setImmediate(endOfTurn);
  }
}

/** Gives an answer; one that throws ends its own response, never the turn's other answers. */
function give(res: Answerable, answer: () => void): void {
  try {
    answer();
  } catch (error) {
    res.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}
