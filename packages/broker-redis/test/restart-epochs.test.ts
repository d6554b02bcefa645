/**
 * Whether a channel keeps its epoch across a Redis restart depends on what that Redis keeps
 * (server-probe.ts, the scripts' `run` mark): an AOF fsynced on every write brings back everything
 * acknowledged, so positions stay valid; without that, or when the node cannot read the settings
 * (CONFIG disabled, as on managed services), the channel starts a new epoch and a resume from an
 * old position is told `recovered: false`. On a private redis-server, killed and restarted.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Broker } from '@herald/server';
import { until } from '../../../test/support/hub.ts';
import { requireService } from '../../../test/support/services.ts';
import { BrokerProcess } from '../../../test/reliability/support/broker-process.ts';
import { createRedisBackend } from '../src/index.ts';

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

/** Publishes three times, restarts Redis (SIGKILL), and resumes from the last position. */
async function acrossRestart(extraArgs: readonly string[]) {
  const redis = await BrokerProcess.start('redis', 'aof', extraArgs);
  cleanup.push(() => redis.dispose());
  const { broker, presence } = await createRedisBackend({ url: redis.url, history: { size: 100, ttlSeconds: 600 } });
  let ready = true;
  await broker.start({ publication: () => undefined, control: () => undefined, readiness: (r) => (ready = r) });
  cleanup.push(() => Promise.all([broker.close(), presence.close()]).then(() => undefined));
  const publish = (b: Broker, n: number) =>
    b.publish({ channel: 'restart:1', dataJson: String(n), ts: Date.now(), ephemeral: false });
  let last = (await publish(broker, 1)).record;
  for (let n = 2; n <= 3; n++) last = (await publish(broker, n)).record;
  await redis.kill();
  await until(() => !ready, 'the broker to notice');
  await redis.restart();
  await until(() => ready, 'the broker to be ready again', 15_000);
  const resumed = await broker.history('restart:1', { since: { offset: last.offset, epoch: last.epoch } });
  const next = (await publish(broker, 4)).record;
  return { before: last, resumed, next };
}

test('a Redis that fsyncs every write keeps epochs across a restart', { timeout: 60_000 }, async (t) => {
  if (!(await requireService(t, 'redis-server'))) return;
  const { before, resumed, next } = await acrossRestart([]);
  assert.equal(resumed.recovered, true);
  assert.deepEqual(resumed.top, { offset: 3, epoch: before.epoch });
  assert.deepEqual([next.offset, next.epoch], [4, before.epoch]);
});

test('a Redis whose settings cannot be read gets new epochs after a restart', { timeout: 60_000 }, async (t) => {
  if (!(await requireService(t, 'redis-server'))) return;
  // The same durable Redis, but CONFIG is not allowed: the node cannot know it keeps everything.
  const { before, resumed, next } = await acrossRestart(['--rename-command', 'CONFIG', '']);
  assert.equal(resumed.recovered, false);
  assert.notEqual(resumed.top.epoch, before.epoch);
  assert.deepEqual([next.offset, next.epoch], [1, resumed.top.epoch]);
});
