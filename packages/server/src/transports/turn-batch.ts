/**
 * Write batching per event-loop turn. Everything that reaches the hub in one turn (HTTP
 * publishes, a broker read, client commands, ingress messages: all the I/O callbacks of one poll
 * phase) and is bound for one socket leaves in one write when the turn ends (a `setImmediate`,
 * which runs right after the poll phase): a socket is corked at its first write of the turn and
 * every corked socket is uncorked together at the end, so the turn's frames leave in one writev.
 *
 * It regulates itself. An idle hub writes a lone publication at once, exactly as an unbatched
 * write would: while the previous turn batched nothing, a socket's first write of the turn is not
 * corked. Once a turn did batch (some socket got two writes), the next turns cork from the first
 * write, so a busy hub pays one write per socket per turn; and a hub that falls behind gathers
 * more per poll phase, so its batches grow and it catches up. Frames keep their order (one
 * stream per socket, first in first out; whoever else writes to a corked socket, `ws`'s close
 * and ping frames too, joins the same queue).
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
 * count in `writableLength`, which the queue bound reads (guarantee 4); kept to a quarter of the
 * bound, they cannot make a healthy client that got a burst in one turn look slow, while a client
 * that stops reading still does.
 */
import type { Duplex } from 'node:stream';

/** On each socket: the number of the last turn it was written in (no allocation per turn). */
const WRITTEN_IN = Symbol('herald.writtenInTurn');
/** On each socket: bytes corked in the turn it was last written in. */
const HELD = Symbol('herald.heldForTurn');
/** On each socket: this module corked it and has not uncorked it yet. */
const CORKED = Symbol('herald.corkedForTurn');
type Stamped = Duplex & { [WRITTEN_IN]?: number; [HELD]?: number; [CORKED]?: boolean };

/** The most a socket's batch holds before it leaves, whatever the queue bound. */
export const FLUSH_BYTES = 64 * 1024;

/** How much a socket's batch may hold for a client whose queue bound is `maxQueueBytes`. */
export function flushThreshold(maxQueueBytes: number): number {
  return Math.min(FLUSH_BYTES, Math.floor(maxQueueBytes / 4));
}

/** This turn's number; only equality matters, so it wraps while still a small integer. */
let turn = 0;
/** Sockets this module corked in this turn. */
let corked: Duplex[] = [];
let scheduled = false;
/** Whether this turn wrote to any socket through this module. */
let wrote = false;
/** Writes of this turn that were a socket's second or later (the batching that paid off). */
let batched = 0;
/** Whether the last turn batched anything: then first writes wait for the end of the turn too. */
let busy = false;

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
  if (wrote) busy = batched > 0;
  wrote = false;
  batched = 0;
  if (answered > 0) answering = answered > 1;
  answered = 0;
  const held = answers;
  answers = [];
  for (const answer of held) answer();
  const sockets = corked;
  corked = [];
  for (const socket of sockets) release(socket as Stamped);
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
  if (open === 0 || (corked.length === 0 && answers.length === 0)) return false;
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

/** Uncorks a socket this module corked: its batch leaves now. */
function release(socket: Stamped): void {
  if (socket[CORKED] !== true) return;
  socket[CORKED] = false;
  socket[HELD] = 0;
  socket.uncork();
}

/** Marks `socket` as written in this turn; true when it is the turn's first write to it. */
function firstInTurn(socket: Duplex): boolean {
  const stamped = socket as Stamped;
  wrote = true;
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
 * first. A socket corked by someone else (node's HTTP response corks for its own writes) is left
 * to them: the chunk joins that batch.
 */
function corkForTurn(socket: Duplex, bytes: number, flushAt: number): void {
  const stamped = socket as Stamped;
  if (stamped[CORKED] === true && (stamped[HELD] ?? 0) >= flushAt) release(stamped);
  if (stamped[CORKED] !== true && socket.writableCorked === 0) {
    socket.cork();
    stamped[CORKED] = true;
    stamped[HELD] = 0;
    corked.push(socket);
  }
  if (stamped[CORKED] === true) stamped[HELD] = (stamped[HELD] ?? 0) + bytes;
}

/**
 * Call right before writing `bytes` to `socket` by any means (`socket.write`, an HTTP response on
 * it, engine.io): the write then joins the turn's batch for that socket, or leaves at once when
 * the batching policy says so.
 */
export function batchWrite(socket: Duplex, bytes: number, flushAt: number): void {
  if (!leavesAtOnce(firstInTurn(socket), busy)) corkForTurn(socket, bytes, flushAt);
}

/** Writes `chunk` to `socket` as part of the turn's batch (see `batchWrite`). */
export function writeBatched(socket: Duplex, chunk: Buffer, flushAt: number): void {
  batchWrite(socket, chunk.length, flushAt);
  socket.write(chunk);
}

/**
 * Writes `chunk` with the socket's batch at the end of this turn, even as the turn's first write:
 * for command answers, which often come in pairs (a pipelined connect and subscribe are answered
 * in one turn, one write for both) and for which microseconds do not matter.
 */
export function writeAtTurnEnd(socket: Duplex, chunk: Buffer, flushAt: number): void {
  firstInTurn(socket);
  corkForTurn(socket, chunk.length, flushAt);
  socket.write(chunk);
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
