/**
 * Write batching per event-loop turn (transports/turn-batch.ts) on a real Duplex stream that
 * records how it was written to: one write per socket per turn when the hub is busy (one buffer
 * when held, one `writev` when corked), a lone write at once when it is idle, order kept across
 * both ways and other writers, a batch never holding more than its threshold, and bytes waiting
 * for the turn's end counted in what the queue bound reads (`writableLength` + `heldBytes`).
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import {
  FLUSH_BYTES,
  HOLD_MS,
  IDLE_AFTER_MS,
  JOIN_BELOW,
  answerInTurn,
  batchWrite,
  flushThreshold,
  gateWrites,
  holdTurnFor,
  leavesAtOnce,
  heldBytes,
  releaseHeld,
  writeAtTurnEnd,
  writeBatched,
} from '../src/transports/turn-batch.ts';

/** A socket stand-in whose `_write`/`_writev` calls are the syscalls a real socket would make. */
class RecordingSocket extends Duplex {
  /** Each write's chunks as text: one entry for a write, several for a `writev`. */
  readonly calls: string[][] = [];
  /** The buffers of the single writes, to see which sockets were given the same one. */
  readonly buffers: Buffer[] = [];

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.calls.push([chunk.toString()]);
    this.buffers.push(chunk);
    callback();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: () => void): void {
    this.calls.push(chunks.map((c) => c.chunk.toString()));
    callback();
  }
}

/** What the transports' `bufferedBytes` reads: the socket's queue and what the turn holds for it. */
const queuedBytes = (socket: Duplex): number => socket.writableLength + heldBytes(socket);

/** A write to a socket others write to as well: `batchWrite` right before it (corked). */
function writeCorked(socket: Duplex, chunk: Buffer, flushAt: number): void {
  batchWrite(socket, chunk.length, flushAt);
  socket.write(chunk);
}

/** The two ways a batch waits, and what one batch of `parts` looks like when it leaves. */
const WAYS = [
  { name: 'held (writeBatched)', write: writeBatched, batch: (...parts: string[]) => [parts.join('')] },
  { name: 'corked (batchWrite)', write: writeCorked, batch: (...parts: string[]) => parts },
] as const;

/** A threshold no test here reaches but the one about it. */
const FLUSH = 1 << 20;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A turn whose only write batched nothing: the hub counts as idle again. */
async function quiet(): Promise<void> {
  await nextTurn();
  writeBatched(new RecordingSocket(), Buffer.from('lone'), FLUSH);
  await nextTurn();
}

/** A turn that batched (`socket` got two writes, p1 and p2): the next one holds from its first write. */
async function busyTurn(socket = new RecordingSocket()): Promise<void> {
  await quiet();
  writeBatched(socket, Buffer.from('p1'), FLUSH);
  writeBatched(socket, Buffer.from('p2'), FLUSH);
  await nextTurn();
}

describe('write batching per event-loop turn', () => {
  it('decides purely: at once only as the first write of a turn on a hub that is not busy', () => {
    assert.equal(leavesAtOnce(true, false), true);
    assert.equal(leavesAtOnce(true, true), false);
    assert.equal(leavesAtOnce(false, false), false);
    assert.equal(leavesAtOnce(false, true), false);
  });

  it('writes a lone publication of an idle hub at once', async () => {
    await quiet();
    const socket = new RecordingSocket();
    writeBatched(socket, Buffer.from('lone'), FLUSH);
    assert.deepEqual(socket.calls, [['lone']], 'written before the turn ends');
  });

  it(`counts a hub that wrote nothing for ${IDLE_AFTER_MS} ms as idle: the first write after a burst leaves at once`, async () => {
    const socket = new RecordingSocket();
    await busyTurn(socket);
    const before = socket.calls.length;
    await sleep(IDLE_AFTER_MS + 10);
    writeBatched(socket, Buffer.from('after a pause'), FLUSH);
    assert.equal(socket.calls.length, before + 1, 'written before the turn ends');
    assert.deepEqual(socket.calls.at(-1), ['after a pause']);
    await nextTurn();
  });

  it(`counts the pause from the end of a turn's writes: a busy turn whose writes took over ${IDLE_AFTER_MS} ms keeps the hub busy`, async () => {
    // The turn-end writes of a fan-out to many sockets take long; the next turn follows them at once.
    class SlowSocket extends RecordingSocket {
      override _write(chunk: Buffer, encoding: string, callback: () => void): void {
        const until = performance.now() + IDLE_AFTER_MS + 20;
        while (performance.now() < until);
        super._write(chunk, encoding, callback);
      }
    }
    const slow = new SlowSocket();
    await busyTurn(slow);
    assert.deepEqual(slow.calls.at(-1), ['p2'], 'the busy turn ended with a slow write');
    const socket = new RecordingSocket();
    writeBatched(socket, Buffer.from('next'), FLUSH);
    assert.deepEqual(socket.calls, [], 'held: the hub did not pause between the turns');
    await nextTurn();
    assert.deepEqual(socket.calls, [['next']]);
  });

  for (const { name, write, batch } of WAYS) {
    it(`batches a burst, ${name}: busy turns leave in one write per socket, in order, counted while they wait`, async () => {
      await quiet();
      const a = new RecordingSocket();
      const b = new RecordingSocket();
      // Turn 1, idle: the first write to each socket goes at once, the rest wait for the turn's end.
      for (let i = 1; i <= 3; i++) {
        write(a, Buffer.from(`a${i}`), FLUSH);
        write(b, Buffer.from(`b${i}`), FLUSH);
      }
      assert.deepEqual(a.calls, [['a1']]);
      assert.equal(queuedBytes(a), 4, 'the waiting bytes count in what the queue bound reads');
      await nextTurn();
      assert.equal(queuedBytes(a), 0);
      assert.deepEqual(a.calls, [['a1'], batch('a2', 'a3')]);
      assert.deepEqual(b.calls, [['b1'], batch('b2', 'b3')]);
      // Turn 2: the last turn batched, so the hub is busy: even first writes wait. One write each.
      for (let i = 4; i <= 6; i++) write(a, Buffer.from(`a${i}`), FLUSH);
      write(b, Buffer.from('b4'), FLUSH);
      assert.equal(a.calls.length, 2, 'nothing written during a busy turn');
      await nextTurn();
      assert.deepEqual(a.calls.at(-1), batch('a4', 'a5', 'a6'));
      assert.deepEqual(b.calls.at(-1), ['b4']);
      // Turn 3 is busy (turn 2 batched): a lone write waits for the turn's end...
      write(a, Buffer.from('a7'), FLUSH);
      assert.deepEqual(a.calls.at(-1), batch('a4', 'a5', 'a6'));
      await nextTurn();
      assert.deepEqual(a.calls.at(-1), ['a7'], 'written at the end of a busy turn');
      // ...but it batched nothing, so turn 4 is idle again: a lone write leaves at once.
      write(a, Buffer.from('a8'), FLUSH);
      assert.deepEqual(a.calls.at(-1), ['a8']);
    });
  }

  it("joins a channel's frames once: subscribers that got the same frames are written the same buffer", async () => {
    const frames = ['p1', 'p2', 'p3'].map((text) => Buffer.from(text));
    const subscribers = [new RecordingSocket(), new RecordingSocket(), new RecordingSocket()];
    // A busy turn first, so that every write of the next one is held.
    await busyTurn();
    for (const frame of frames) for (const socket of subscribers) writeBatched(socket, frame, FLUSH);
    // A socket of two channels got one more frame: its batch is its own.
    writeBatched(subscribers[2]!, Buffer.from('q1'), FLUSH);
    await nextTurn();
    const [a, b, c] = subscribers.map((socket) => socket.buffers.at(-1));
    assert.equal(a?.toString(), 'p1p2p3');
    assert.equal(a, b, 'one buffer for both');
    assert.equal(c?.toString(), 'p1p2p3q1');
  });

  it('derives the threshold from the queue bound: a quarter of it, at most 64 KiB', () => {
    assert.equal(flushThreshold(1_048_576), FLUSH_BYTES);
    assert.equal(flushThreshold(65_536), 16_384);
  });

  it('lets a batch leave early once it holds its threshold, so a turn never holds more back', async () => {
    await quiet();
    const socket = new RecordingSocket();
    writeBatched(socket, Buffer.from('first'), FLUSH_BYTES);
    const chunk = Buffer.alloc(FLUSH_BYTES / 4, 'x');
    for (let i = 0; i < 10; i++) {
      writeBatched(socket, chunk, FLUSH_BYTES);
      assert.ok(queuedBytes(socket) <= FLUSH_BYTES + chunk.length, `held ${queuedBytes(socket)}`);
    }
    assert.ok(socket.calls.length >= 3, `early batches left within the turn: ${socket.calls.length} writes`);
    await nextTurn();
    const written = socket.calls.flat().join('');
    assert.equal(written, 'first' + chunk.toString().repeat(10), 'all of it, in order');
  });

  it('keeps the order of every writer on a corked socket (answers, publications, raw writes)', async () => {
    await busyTurn();
    const socket = new RecordingSocket();
    batchWrite(socket, 6, FLUSH);
    socket.write('answer');
    writeCorked(socket, Buffer.from('pub'), FLUSH);
    // A held frame on a socket this turn corked joins the cork, behind what is there.
    writeAtTurnEnd(socket, Buffer.from('push'), FLUSH);
    batchWrite(socket, 11, FLUSH);
    socket.write('close-frame');
    assert.deepEqual(socket.calls, []);
    await nextTurn();
    assert.deepEqual(socket.calls, [['answer', 'pub', 'push', 'close-frame']]);
  });

  it('writes large held frames as they are, in one writev: no copy of big publications', async () => {
    await busyTurn();
    const socket = new RecordingSocket();
    const chunks: Buffer[] = [];
    socket._writev = (written, callback): void => {
      chunks.push(...written.map((w) => w.chunk));
      callback();
    };
    const big = [Buffer.alloc(JOIN_BELOW, 'a'), Buffer.alloc(JOIN_BELOW, 'b')];
    for (const frame of big) writeBatched(socket, frame, FLUSH);
    await nextTurn();
    assert.equal(chunks.length, 2, 'one writev of both');
    assert.ok(chunks[0] === big[0] && chunks[1] === big[1], 'the frames themselves');
  });

  it("writes held frames before any later write: corked ones, and its owner's direct ones after releaseHeld", async () => {
    await quiet();
    const socket = new RecordingSocket();
    writeAtTurnEnd(socket, Buffer.from('answer'), FLUSH);
    writeBatched(socket, Buffer.from('pub'), FLUSH);
    // Another writer of the socket (batchWrite before its write): the held frames go first.
    batchWrite(socket, 3, FLUSH);
    socket.write('raw');
    await nextTurn();
    assert.deepEqual(socket.calls, [['answerpub'], ['raw']]);
    // The owner's own direct write (`ws`'s close frame) after releaseHeld.
    writeAtTurnEnd(socket, Buffer.from('goodbye'), FLUSH);
    assert.equal(queuedBytes(socket), 7);
    releaseHeld(socket);
    socket.write('close-frame');
    assert.deepEqual(socket.calls.slice(2), [['goodbye'], ['close-frame']]);
    await nextTurn();
    assert.equal(socket.calls.length, 4, 'nothing was left to write at the end of the turn');
  });

  it('drops held frames once the WebSocket they were for is closing, or its socket is gone', async () => {
    await quiet();
    const closing = new RecordingSocket();
    const ws = { readyState: 1, OPEN: 1 };
    gateWrites(closing, ws);
    const destroyed = new RecordingSocket();
    for (const socket of [closing, destroyed]) writeAtTurnEnd(socket, Buffer.from('late'), FLUSH);
    // `ws` answered the client's close frame with its own; the other socket was destroyed.
    ws.readyState = 2;
    destroyed.destroy();
    await nextTurn();
    assert.deepEqual(closing.calls, [], 'nothing after the close frame');
    assert.deepEqual(destroyed.calls, []);
    assert.equal(queuedBytes(closing), 0, 'and nothing is held for it any more');
    // While open, the gate lets them through.
    ws.readyState = 1;
    writeAtTurnEnd(closing, Buffer.from('on time'), FLUSH);
    await nextTurn();
    assert.deepEqual(closing.calls, [['on time']]);
  });

  it("gives an idle hub's answers at once, and a busy turn's answers together at its end", async () => {
    await quiet();
    const given: string[] = [];
    const res = { destroy: (): void => assert.fail('no answer here throws') };
    // An idle hub: each answer is given as it comes, even several in one turn.
    answerInTurn(res, () => given.push('a1'));
    answerInTurn(res, () => given.push('a2'));
    assert.deepEqual(given, ['a1', 'a2'], 'given at once');
    await nextTurn();
    // That turn gave two answers: this one's wait for its end, in order, even a lone one.
    answerInTurn(res, () => given.push('b1'));
    answerInTurn(res, () => given.push('b2'));
    assert.deepEqual(given, ['a1', 'a2']);
    await nextTurn();
    assert.deepEqual(given, ['a1', 'a2', 'b1', 'b2']);
    answerInTurn(res, () => given.push('c1'));
    assert.equal(given.length, 4, 'still busy: the last turn gave two');
    await nextTurn();
    assert.deepEqual(given.at(-1), 'c1');
    // A turn of one answer makes the hub idle again.
    answerInTurn(res, () => given.push('d1'));
    assert.deepEqual(given.at(-1), 'd1', 'given at once');
  });

  it("ends only its own response when an answer throws; the turn's other answers are given", async () => {
    await quiet();
    const destroyed: string[] = [];
    const response = (name: string) => ({ destroy: (error?: Error) => destroyed.push(`${name}: ${error?.message}`) });
    const given: string[] = [];
    answerInTurn(response('x'), () => given.push('x'));
    answerInTurn(response('y'), () => given.push('y'));
    await nextTurn();
    answerInTurn(response('bad'), () => {
      throw new Error('headers already sent');
    });
    answerInTurn(response('z'), () => given.push('z'));
    await nextTurn();
    assert.deepEqual(given, ['x', 'y', 'z']);
    assert.deepEqual(destroyed, ['bad: headers already sent']);
  });

  it('learns each policy only from the turns that exercised it', async () => {
    await quiet();
    const socket = new RecordingSocket();
    const res = { destroy: (): void => assert.fail('no answer here throws') };
    const given: string[] = [];
    // A turn that batched writes: the sockets count as busy.
    writeBatched(socket, Buffer.from('p1'), FLUSH);
    writeBatched(socket, Buffer.from('p2'), FLUSH);
    await nextTurn();
    // A turn that only answered (as a worker's turns alternate): that says nothing about the sockets.
    answerInTurn(res, () => given.push('a1'));
    answerInTurn(res, () => given.push('a2'));
    await nextTurn();
    const before = socket.calls.length;
    writeBatched(socket, Buffer.from('p3'), FLUSH);
    assert.equal(socket.calls.length, before, 'still busy: the write waits for the end of the turn');
    await nextTurn();
    assert.deepEqual(socket.calls.at(-1), ['p3']);
    // And a turn that only wrote says nothing about the answers: they still wait (two were given last time).
    writeBatched(socket, Buffer.from('p4'), FLUSH);
    await nextTurn();
    answerInTurn(res, () => given.push('a3'));
    assert.deepEqual(given, ['a1', 'a2'], 'the answer waits for the end of the turn');
    await nextTurn();
    assert.deepEqual(given, ['a1', 'a2', 'a3']);
  });

  describe('a turn that asked for replies due at once (a worker publishing through its primary)', () => {
    it('ends once the replies are in, so their publications leave in its writes', async () => {
      const socket = new RecordingSocket();
      await busyTurn(socket);
      const res = { destroy: (): void => assert.fail('no answer here throws') };
      const given: string[] = [];
      writeBatched(socket, Buffer.from('p3'), FLUSH);
      const released = holdTurnFor();
      await nextTurn();
      assert.deepEqual(socket.calls.at(-1), ['p2'], "the turn's end waits for the reply");
      // The reply arrives: the primary sends the publication first, then the acknowledgement.
      writeBatched(socket, Buffer.from('p4'), FLUSH);
      answerInTurn(res, () => given.push('ack'));
      answerInTurn(res, () => given.push('ack2'));
      released();
      await nextTurn();
      assert.deepEqual(socket.calls.at(-1), ['p3p4'], 'one write for the turn and its reply');
      assert.deepEqual(given, ['ack', 'ack2']);
    });

    it('does not wait for a reply that came within the turn', async () => {
      const socket = new RecordingSocket();
      await busyTurn(socket);
      writeBatched(socket, Buffer.from('p3'), FLUSH);
      holdTurnFor()();
      await nextTurn();
      assert.deepEqual(socket.calls.at(-1), ['p3']);
    });

    it(`waits ${HOLD_MS} ms at most for a reply that does not come`, async () => {
      const socket = new RecordingSocket();
      await busyTurn(socket);
      writeBatched(socket, Buffer.from('p3'), FLUSH);
      const released = holdTurnFor();
      await nextTurn();
      assert.deepEqual(socket.calls.at(-1), ['p2']);
      await sleep(HOLD_MS + 50);
      assert.deepEqual(socket.calls.at(-1), ['p3'], 'written when the wait timed out');
      released();
      writeBatched(socket, Buffer.from('p4'), FLUSH);
      await nextTurn();
      assert.deepEqual(socket.calls.at(-1), ['p4'], 'a late reply changes nothing');
    });

    it('waits once: replies asked for during the wait do not extend it', async () => {
      const socket = new RecordingSocket();
      await busyTurn(socket);
      writeBatched(socket, Buffer.from('p3'), FLUSH);
      const first = holdTurnFor();
      await nextTurn();
      // While it waits, a new request is read and forwarded, then the first reply comes.
      const second = holdTurnFor();
      writeBatched(socket, Buffer.from('p4'), FLUSH);
      first();
      await nextTurn();
      assert.deepEqual(socket.calls.at(-1), ['p3p4'], 'ended without waiting for the second');
      second();
    });

    it('does not wait when nothing is held for the end of the turn (an idle hub forwards at once)', async () => {
      // A turn of lone writes, which batched nothing: the hub is idle.
      writeBatched(new RecordingSocket(), Buffer.from('idle'), FLUSH);
      await nextTurn();
      const socket = new RecordingSocket();
      const released = holdTurnFor();
      writeBatched(socket, Buffer.from('lone'), FLUSH);
      await nextTurn();
      // The next turn is idle too (nothing was batched): its lone write leaves at once.
      writeBatched(socket, Buffer.from('reply'), FLUSH);
      assert.deepEqual(socket.calls, [['lone'], ['reply']]);
      released();
    });
  });
});
