/**
 * The pipelined publish path (per channel one message on the way, publications gathered into the
 * next) against the shared NATS, through a proxy, in a namespace of each case's own; and the
 * NATS-only bound on a channel's keyed publications.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { HeraldError } from '@herald/protocol';
import type { PublishResult } from '@herald/server';
import { brokerPipeline } from '../../../test/support/broker-pipeline.ts';
import { deleteNatsNamespace } from '../../../test/support/nats.ts';
import { requireService } from '../../../test/support/services.ts';
import { createNatsBackend } from '../src/index.ts';

const URL = 'nats://127.0.0.1:4222';

brokerPipeline({
  name: 'nats',
  port: 4222,
  available: (t) => requireService(t, 'nats'),
  create: (port, prefix, history, publishQueue) =>
    createNatsBackend({ url: `nats://127.0.0.1:${port}`, prefix, history, publishQueue, storage: 'memory' }),
  cleanup: (prefix) => deleteNatsNamespace(URL, prefix),
});

const COUNT = 2000;

test('keyed publications of one channel that would wait past maxWaitMs are refused at once; the accepted ones are all stored', async (t) => {
  if (!(await requireService(t, 'nats'))) return;
  const prefix = `hp_${randomBytes(5).toString('hex')}`;
  const { broker, presence } = await createNatsBackend({
    url: URL,
    prefix,
    history: { size: 1000, ttlSeconds: 600 },
    storage: 'memory',
    publishQueue: { maxWaitMs: 50, maxPending: 10_000 },
  });
  await broker.start({ publication: () => undefined, control: () => undefined, readiness: () => undefined });
  try {
    const draft = (i: number) => ({
      channel: 'keyed:hot',
      dataJson: String(i),
      ts: Date.now(),
      ephemeral: false,
      idempotencyKey: `k-${i}`,
    });
    // Each keyed publication needs a message of its own: 2,000 of them are 2,000 round trips, past
    // 50 ms on any machine (the estimate is the measured round trip, whatever it is here).
    const accepted = Array.from({ length: COUNT }, (_, i) => broker.publish(draft(i)));
    const first = await accepted[0];
    assert.equal(first?.record.offset, 1);
    const refusal = await broker.publish(draft(999)).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refusal instanceof HeraldError, `refused while ${COUNT - 1} keyed publications are ahead of it`);
    // The keyed estimate says 429; on a loaded machine the channel's oldest publication may have
    // waited the 50 ms already, and that bound says 503. Either way: refused at once, with Retry-After.
    assert.ok(['rate_limited', 'broker_unavailable'].includes(refusal.code), refusal.code);
    assert.ok((refusal.retryAfterSeconds ?? 0) >= 1);
    const results: PublishResult[] = await Promise.all(accepted);
    assert.deepEqual(
      results.map((r) => r.record.offset),
      Array.from({ length: COUNT }, (_, i) => i + 1),
    );
    const history = await broker.history('keyed:hot', {
      since: { offset: COUNT - 1, epoch: results[0]?.record.epoch ?? '' },
    });
    assert.equal(history.top.offset, COUNT, 'the refused one was not stored');
  } finally {
    await broker.close();
    await presence.close();
    await deleteNatsNamespace(URL, prefix);
  }
});
