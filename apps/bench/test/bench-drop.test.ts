/**
 * `herald bench --scenarios drop`, small: 20 clients per target, 3 s of numbered publications
 * while every client's connection is cut. Herald over WebSocket, SSE and long-polling, and over
 * WebSocket across two nodes on Redis, must hand every publication to every client exactly once
 * (its resume guarantee, a behaviour, not a timing);
 * the references get a row of figures and no threshold (raw ws loses publications by design).
 * Every figure adds up, and no process of the scenario is left running.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DROP_TARGET_IDS, DROP_TARGETS } from '../src/drop.ts';
import { runBench, type BenchResult } from '../src/index.ts';
import { parseBenchArgs, UsageError, type BenchOptions } from '../src/options.ts';

const ARGS = ['--scenarios', 'drop', '--sizes', '20', '--rounds', '1', '--drop-seconds', '3', '--drop-rate', '20'];

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

describe('herald bench --scenarios drop', { timeout: 120_000 }, () => {
  let out: string;
  let result: BenchResult;
  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'herald-bench-drop-'));
    const options = parseBenchArgs([...ARGS, '--out', out]) as BenchOptions;
    result = await runBench(options, `herald bench ${ARGS.join(' ')}`, () => undefined);
  });
  after(() => rm(out, { recursive: true, force: true }));

  it('measures every target, and every count adds up', () => {
    assert.deepEqual(result.failures, []);
    assert.deepEqual(
      result.drop.map((m) => m.target),
      [...DROP_TARGET_IDS],
    );
    for (const m of result.drop) {
      assert.equal(m.clients, 20, `${m.target}: 20 clients`);
      assert.equal(m.perClient, 60, `${m.target}: 20/s for 3 s`);
      assert.equal(m.publishFailed + m.publishSkipped, 0, `${m.target}: every publication was sent and answered`);
      assert.equal(m.exactlyOnce + m.lost + m.duplicated, m.clients * m.perClient, `${m.target}: shares add up`);
      assert.ok(m.extraDeliveries >= m.duplicated, `${m.target}: a duplicated pair has an extra delivery`);
      assert.ok(m.clientsExactlyOnce <= m.clients);
      assert.equal(m.strays, 0, `${m.target}: nothing that was not published`);
      // Every client is cut within the first 2 s, so each one reconnected at least once.
      assert.ok(m.cuts >= m.clients, `${m.target}: every client was cut (${m.cuts} cuts)`);
      assert.ok(m.reconnects >= m.cuts, `${m.target}: every cut was followed by a reconnect`);
      assert.equal(m.liveAtEnd, m.clients, `${m.target}: every client came back`);
    }
  });

  it('delivers every publication exactly once, in order, to every Herald client on every transport and across nodes', () => {
    for (const id of ['herald-ws', 'herald-sse', 'herald-poll', 'herald-ws-redis'] as const) {
      const m = result.drop.find((x) => x.target === id);
      assert.ok(m, `a measurement of ${id}`);
      assert.equal(m.settled, true, `${id}: every client caught up`);
      assert.equal(m.lost, 0, `${id}: nothing lost`);
      assert.equal(m.duplicated, 0, `${id}: nothing duplicated`);
      assert.equal(m.outOfOrder, 0, `${id}: in order`);
      assert.equal(m.notRecovered, 0, `${id}: every resume recovered`);
      assert.equal(m.exactlyOnce, m.clients * m.perClient);
      assert.equal(m.clientsExactlyOnce, m.clients);
    }
  });

  it('prints a row per target in report.md and keeps the raw figures in results.json', async () => {
    const markdown = await readFile(join(out, 'report.md'), 'utf8');
    assert.match(markdown, /## Drop and resume: connections cut while publishing/);
    for (const id of DROP_TARGET_IDS) {
      const row = markdown.split('\n').find((l) => l.startsWith(`| ${DROP_TARGETS[id].label} |`));
      assert.ok(row, `a row for ${id}`);
      const cells = row.split('|').slice(2, -1);
      assert.equal(cells.length, 8);
      assert.ok(
        cells.slice(0, 7).every((c) => /\d/.test(c)),
        `numbers in "${row}"`,
      );
    }
    const saved = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { drop: unknown[] };
    assert.equal(saved.drop.length, DROP_TARGET_IDS.length);
  });

  it('leaves no process running', () => {
    assert.equal(result.leftRunning, 0);
    const pids = result.drop.flatMap((m) => m.pids);
    // A server, the clients and the publisher per target; two servers for the Redis target.
    const expected = DROP_TARGET_IDS.reduce((n, id) => n + (DROP_TARGETS[id].redis === true ? 4 : 3), 0);
    assert.equal(pids.length, expected);
    for (const pid of pids) assert.equal(running(pid), false, `process ${pid} stopped`);
  });
});

describe('herald bench --drop-targets', () => {
  it('runs the targets named, and refuses one it does not know', () => {
    const options = parseBenchArgs(['--scenarios', 'drop', '--drop-targets', 'herald-poll,ws']) as BenchOptions;
    assert.deepEqual(options.dropTargets, ['herald-poll', 'ws']);
    assert.deepEqual((parseBenchArgs(['--scenarios', 'drop']) as BenchOptions).dropTargets, [...DROP_TARGET_IDS]);
    assert.throws(() => parseBenchArgs(['--drop-targets', 'herald-ws,carrier-pigeon']), UsageError);
  });
});
