/** ConcurrencyLimit: at most `limit` tasks in flight, the rest in arrival order, slots freed on failure too. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConcurrencyLimit } from '../src/core/concurrency-limit.ts';

/** A task that finishes when told to, recording when it started. */
function gate(started: number[], id: number) {
  let open!: () => void;
  let fail!: (error: Error) => void;
  const done = new Promise<number>((resolve, reject) => {
    open = () => resolve(id);
    fail = reject;
  });
  return { task: () => (started.push(id), done), open: () => open(), fail: (e: Error) => fail(e) };
}

const turn = () => new Promise((r) => setImmediate(r));

test('runs at most `limit` tasks at once and starts the waiting ones in arrival order', async () => {
  const limit = new ConcurrencyLimit(3);
  const started: number[] = [];
  const gates = Array.from({ length: 8 }, (_, i) => gate(started, i));
  const results = gates.map((g) => limit.run(g.task));
  await turn();
  assert.deepEqual(started, [0, 1, 2]);
  assert.equal(limit.active, 3);
  assert.equal(limit.waiting, 5);
  gates[1]!.open();
  await turn();
  assert.deepEqual(started, [0, 1, 2, 3], 'a finished task hands its slot to the first waiter');
  assert.equal(limit.active, 3);
  for (const g of gates) g.open();
  assert.deepEqual(await Promise.all(results), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(limit.active, 0);
  assert.equal(limit.waiting, 0);
});

test('a failing task frees its slot and its error reaches the caller', async () => {
  const limit = new ConcurrencyLimit(1);
  const started: number[] = [];
  const first = gate(started, 1);
  const second = gate(started, 2);
  const a = limit.run(first.task);
  const b = limit.run(second.task);
  await turn();
  first.fail(new Error('broker gone'));
  await assert.rejects(a, /broker gone/);
  await turn();
  assert.deepEqual(started, [1, 2]);
  second.open();
  assert.equal(await b, 2);
  assert.equal(limit.active, 0);
});

test('refuses a limit below 1', () => {
  assert.throws(() => new ConcurrencyLimit(0), RangeError);
  assert.throws(() => new ConcurrencyLimit(1.5), RangeError);
});
