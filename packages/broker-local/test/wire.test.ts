/**
 * The line writer between workers and the primary: everything sent in one gathering window leaves
 * in one write, in order, and a worker's window (`task`) closes before the turn's end, where the
 * worker's subscriber sockets are written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineWriter, lineReader } from '../src/wire.ts';

/** A socket stand-in that records each write. */
function recorder(): { writes: string[]; write(data: string): boolean; destroyed: boolean } {
  const writes: string[] = [];
  return { writes, write: (data) => writes.push(data) > 0, destroyed: false };
}

const endOfTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('LineWriter', () => {
  it('turn: gathers the sends of every task of a turn into one write, in order', async () => {
    const socket = recorder();
    const out = new LineWriter(socket, 'turn');
    out.send({ n: 1 });
    await Promise.resolve();
    queueMicrotask(() => out.send({ n: 2 }));
    setImmediate(() => out.send({ n: 3 })); // queued after the writer's own flush: the next turn
    await endOfTurn();
    assert.deepEqual(socket.writes, ['{"n":1}\n{"n":2}\n']);
    await endOfTurn();
    assert.deepEqual(socket.writes, ['{"n":1}\n{"n":2}\n', '{"n":3}\n']);
  });

  it('task: writes once the current task is done, before anything queued for the end of the turn', async () => {
    const socket = recorder();
    const out = new LineWriter(socket, 'task');
    const seenAtTurnEnd: number[] = [];
    setImmediate(() => seenAtTurnEnd.push(socket.writes.length));
    out.send({ n: 1 });
    out.send({ n: 2 });
    assert.deepEqual(socket.writes, [], 'not during the task');
    await endOfTurn();
    assert.deepEqual(socket.writes, ['{"n":1}\n{"n":2}\n']);
    assert.deepEqual(seenAtTurnEnd, [1], 'written before the end of the turn');
  });

  it('round-trips through the reader, whatever the chunking', () => {
    const socket = recorder();
    const out = new LineWriter(socket);
    out.send({ p: { channel: 'a', data: 'é\n' } });
    out.send({ i: 1, r: null });
    out.flush();
    const bytes = Buffer.from(socket.writes.join(''));
    // Every chunk size, so that some reads split the two bytes of the "é".
    for (let size = 1; size <= 8; size++) {
      const got: unknown[] = [];
      const read = lineReader(
        (m) => got.push(m),
        (e) => assert.fail(e),
      );
      for (let i = 0; i < bytes.length; i += size) read(bytes.subarray(i, i + size));
      assert.deepEqual(got, [{ p: { channel: 'a', data: 'é\n' } }, { i: 1, r: null }], `chunks of ${size}`);
    }
  });
});
