/**
 * The pipelined publish paths of the network brokers (Redis: a batch script per event-loop turn;
 * NATS: per channel one message on the way, publications gathered into the next one), held to
 * the guarantees under the conditions batching changes: many publishes of one channel at once
 * from two nodes, a full queue, a broker that stops answering, and a connection cut while
 * batches are in flight. Each target reaches its service through a TCP proxy of the test's own,
 * so the faults touch nothing but the test's nodes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import { HeraldError } from '@herald/protocol';
import type {
  Broker,
  BrokerEvents,
  HistoryLimits,
  PresenceStore,
  PublicationRecord,
  PublishDraft,
  PublishQueueLimits,
  PublishResult,
} from '@herald/server';
import { api, startHub } from './hub.ts';
import { TcpProxy } from './tcp-proxy.ts';

export interface PipelineTarget {
  readonly name: string;
  /** The service's port on 127.0.0.1, which the proxy forwards to. */
  readonly port: number;
  available(t: TestContext): Promise<boolean>;
  /** A broker and presence store on the service at 127.0.0.1:`port`, under namespace `ns`. */
  create(
    port: number,
    ns: string,
    history: HistoryLimits,
    publishQueue: Partial<PublishQueueLimits>,
  ): Promise<{ broker: Broker; presence: PresenceStore }>;
  /** Deletes what namespace `ns` stored. */
  cleanup(ns: string): Promise<void>;
}

const HISTORY: HistoryLimits = { size: 5_000, ttlSeconds: 600 };

class Recorder implements BrokerEvents {
  readonly publications: PublicationRecord[] = [];
  publication(record: PublicationRecord): void {
    this.publications.push(record);
  }
  control(): void {}
  readiness(): void {}
}

function draft(channel: string, data: unknown, idempotencyKey?: string): PublishDraft {
  return {
    channel,
    dataJson: JSON.stringify(data),
    ts: Date.now(),
    ephemeral: false,
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
  };
}

async function until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function dataOf(record: PublicationRecord): { node?: string; i?: number; key?: string } {
  return JSON.parse(record.json).data;
}

interface Case {
  readonly proxy: TcpProxy;
  node(queue?: Partial<PublishQueueLimits>): Promise<{ broker: Broker; events: Recorder }>;
  readonly channel: (name: string) => string;
}

export function brokerPipeline(target: PipelineTarget): void {
  const test = (title: string, body: (c: Case) => Promise<void>): void => {
    it(title, { timeout: 90_000 }, async (t) => {
      if (!(await target.available(t))) return;
      const ns = `hp_${randomBytes(5).toString('hex')}`;
      const proxy = new TcpProxy(target.port);
      await proxy.listen();
      const opened: Array<{ broker: Broker; presence: PresenceStore }> = [];
      try {
        await body({
          proxy,
          channel: (name) => `pipe-${ns}:${name}`,
          node: async (queue = {}) => {
            const backend = await target.create(proxy.port, ns, HISTORY, queue);
            opened.push(backend);
            const events = new Recorder();
            await backend.broker.start(events);
            return { broker: backend.broker, events };
          },
        });
      } finally {
        for (const { broker, presence } of opened) {
          await broker.close();
          await presence.close();
        }
        await proxy.close();
        await target.cleanup(ns);
      }
    });
  };

  describe(`${target.name} pipelined publishing`, () => {
    test('publishes of one channel made at once on two nodes: contiguous offsets, each node’s in call order, history is delivery order', async ({
      node,
      channel,
    }) => {
      const a = await node();
      const b = await node();
      const ch = channel('burst');
      await a.broker.subscribe(ch);
      const burst = (who: { broker: Broker }, name: string): Promise<PublishResult>[] =>
        range(0, 399).map((i) =>
          who.broker.publish(
            // Every 25th has a key; two in a row share one, the second in the same turn as the first.
            draft(ch, { node: name, i }, i % 25 === 0 ? `${name}-${i}` : i % 25 === 1 ? `${name}-${i - 1}` : undefined),
          ),
        );
      const fromA = burst(a, 'a');
      const fromB = burst(b, 'b');
      const [resultsA, resultsB] = await Promise.all([Promise.all(fromA), Promise.all(fromB)]);
      const stored: PublicationRecord[] = [];
      for (const results of [resultsA, resultsB]) {
        let last = 0;
        results.forEach((result, i) => {
          if (i % 25 === 1) {
            // The repeated key: answered with the first result, not stored again.
            assert.equal(result.duplicate, true, `publication ${i} repeats a key`);
            assert.deepEqual(result.record, results[i - 1]?.record);
            return;
          }
          assert.equal(result.duplicate, false);
          assert.ok(result.record.offset > last, 'a node’s publications are stored in the order it made them');
          last = result.record.offset;
          stored.push(result.record);
        });
      }
      const total = 2 * (400 - 16);
      assert.deepEqual(
        stored.map((r) => r.offset).sort((x, y) => x - y),
        range(1, total),
      );
      const history = await b.broker.history(ch, {});
      assert.deepEqual(
        history.publications.map((r) => r.offset),
        range(1, total),
      );
      const byOffset = new Map(stored.map((r) => [r.offset, r]));
      for (const record of history.publications) assert.deepEqual(record, byOffset.get(record.offset));
      await until(() => a.events.publications.length >= total, 'the fan-out of every publication');
      assert.deepEqual(a.events.publications, history.publications);
    });

    test('past maxPending a publish is refused at once with rate_limited and Retry-After; nothing refused is stored', async ({
      node,
      channel,
    }) => {
      const a = await node({ maxPending: 100 });
      const channels = range(0, 4).map((i) => channel(`full-${i}`));
      const settled: Array<'accepted' | 'refused'> = [];
      const outcomes = range(0, 249).map((i) =>
        a.broker.publish(draft(channels[i % 5] as string, { i })).then(
          (result) => {
            settled.push('accepted');
            return result;
          },
          (error: unknown) => {
            settled.push('refused');
            throw error;
          },
        ),
      );
      const results = await Promise.allSettled(outcomes);
      const accepted = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected');
      assert.equal(accepted.length, 100);
      assert.equal(refused.length, 150);
      for (const r of refused) {
        const error = (r as PromiseRejectedResult).reason;
        assert.ok(error instanceof HeraldError);
        assert.equal(error.code, 'rate_limited');
        assert.equal(error.retryAfterSeconds, 1);
      }
      // Refused without waiting for the broker: every refusal came before the first acknowledgement.
      assert.deepEqual(settled.slice(0, 150), Array(150).fill('refused'));
      for (const ch of channels) {
        const history = await a.broker.history(ch, {});
        assert.deepEqual(
          history.publications.map((p) => p.offset),
          range(1, 20),
        );
      }
      // The queue drained: publishing works again.
      assert.equal((await a.broker.publish(draft(channels[0] as string, 'after'))).record.offset, 21);
    });

    test('a broker that stops answering: publishes are refused with broker_unavailable after maxWaitMs, not held; nothing is lost', async ({
      node,
      channel,
      proxy,
    }) => {
      const a = await node({ maxWaitMs: 300 });
      const ch = channel('stall');
      for (let i = 1; i <= 5; i++) assert.equal((await a.broker.publish(draft(ch, i))).record.offset, i);
      assert.ok(proxy.stall('toClient') > 0);
      const waiting = range(6, 15).map((i) => a.broker.publish(draft(ch, i)));
      const answered: number[] = [];
      for (const p of waiting) void p.then((r) => answered.push(r.record.offset)).catch(() => undefined);
      await sleep(500);
      assert.deepEqual(answered, [], 'the broker is silent');
      const refusal = await a.broker.publish(draft(ch, 'refused')).then(
        () => undefined,
        (error: unknown) => error,
      );
      assert.ok(refusal instanceof HeraldError, `refused, not held: ${String(refusal)}`);
      assert.equal(refusal.code, 'broker_unavailable');
      assert.equal(refusal.retryAfterSeconds, 1);
      assert.deepEqual(answered, [], 'refused while the others still wait');
      proxy.flow('toClient');
      const results = await Promise.all(waiting);
      assert.deepEqual(
        results.map((r) => r.record.offset),
        range(6, 15),
      );
      const history = await a.broker.history(ch, {});
      assert.deepEqual(
        history.publications.map((p) => dataOf(p)),
        range(1, 15),
      );
    });

    test('a connection cut with batches in flight: every acknowledged publication is kept, and retried with its key none is stored twice', async ({
      node,
      channel,
      proxy,
    }) => {
      const a = await node();
      const chs = [channel('cut-0'), channel('cut-1')];
      const acked = new Map<string, PublicationRecord>();
      const failed: Array<{ key: string; ch: string }> = [];
      for (let round = 0; round < 24; round++) {
        const items = range(0, 39).map((i) => ({ key: `r${round}-${i}`, ch: chs[i % 2] as string }));
        const outcomes = items.map((item) => a.broker.publish(draft(item.ch, { key: item.key }, item.key)));
        // Mid-run, cut every connection while this round's batches are on the way.
        if (round === 12) setImmediate(() => proxy.cutAll());
        const results = await Promise.allSettled(outcomes);
        results.forEach((result, i) => {
          const item = items[i] as { key: string; ch: string };
          if (result.status === 'fulfilled') acked.set(item.key, result.value.record);
          else failed.push(item);
        });
        if (round === 12) assert.ok(failed.length > 0, 'the cut failed publications in flight');
        while (!a.broker.ready) await sleep(20);
      }
      // Retry what failed, with the same key, as a publisher would.
      for (const item of failed) {
        for (let attempt = 1; ; attempt++) {
          try {
            const { record } = await a.broker.publish(draft(item.ch, { key: item.key }, item.key));
            acked.set(item.key, record);
            break;
          } catch (error) {
            if (attempt >= 50) throw error;
            await sleep(100);
          }
        }
      }
      assert.equal(acked.size, 24 * 40);
      for (const ch of chs) {
        const history = await a.broker.history(ch, {});
        const keys = history.publications.map((p) => dataOf(p).key);
        assert.equal(new Set(keys).size, keys.length, 'no publication stored twice');
        assert.equal(keys.length, 24 * 20, 'every publication stored');
        assert.deepEqual(
          history.publications.map((p) => p.offset),
          range(1, keys.length),
        );
        for (const record of history.publications) {
          assert.deepEqual(acked.get(dataOf(record).key as string), record, 'acknowledged as stored');
        }
      }
    });

    test('POST /api/batch and /api/broadcast: stored in command order per channel before the answer, seen by another node', async ({
      proxy,
      channel,
    }) => {
      const ns = `hp_${randomBytes(5).toString('hex')}`;
      const hub = await startHub(await target.create(proxy.port, ns, HISTORY, {}));
      const other = await target.create(proxy.port, ns, HISTORY, {});
      await other.broker.start(new Recorder());
      try {
        const chs = [channel('batch-a'), channel('batch-b'), channel('batch-c')];
        const commands = range(0, 299).map((i) => ({
          method: 'publish',
          params: { channel: chs[i % 3], data: i, ...(i % 10 === 0 ? { idempotencyKey: `b-${i}` } : {}) },
        }));
        const [batch, broadcast] = await Promise.all([
          api(hub, 'POST', '/api/batch', { commands }),
          api(hub, 'POST', '/api/broadcast', { channels: chs, data: 'all', idempotencyKey: 'bc-1' }),
        ]);
        assert.equal(batch.status, 200);
        assert.equal(broadcast.status, 200);
        const offsets = new Map<string, number[]>(chs.map((ch) => [ch, []]));
        batch.body.replies.forEach((reply: { result: { offset: number } }, i: number) =>
          offsets.get(chs[i % 3] as string)?.push(reply.result.offset),
        );
        for (const [i, ch] of chs.entries()) {
          const mine = offsets.get(ch) as number[];
          assert.deepEqual(
            mine,
            [...mine].sort((x, y) => x - y),
            'a channel’s commands are stored in command order',
          );
          // Read by a node that took no part: acknowledged means stored.
          const history = await other.broker.history(ch, {});
          const batchData = history.publications.map((p) => JSON.parse(p.json).data).filter((d) => d !== 'all');
          assert.deepEqual(
            batchData,
            range(0, 299).filter((n) => n % 3 === i),
          );
          const fromBroadcast = broadcast.body.results[i];
          assert.equal(fromBroadcast.channel, ch);
          const stored = history.publications.find((p) => p.offset === fromBroadcast.offset);
          assert.equal(JSON.parse(stored?.json ?? '{}').data, 'all');
          assert.equal(history.publications.length, 101);
        }
        const again = await api(hub, 'POST', '/api/broadcast', {
          channels: chs,
          data: 'again',
          idempotencyKey: 'bc-1',
        });
        assert.deepEqual(again.body, broadcast.body, 'the key applies per channel, on a network broker too');
      } finally {
        await other.broker.close();
        await other.presence.close();
        await hub.close();
        await target.cleanup(ns);
      }
    });

    test('over HTTP, a full publish queue answers 429 with Retry-After', async ({ proxy, channel }) => {
      const ns = `hp_${randomBytes(5).toString('hex')}`;
      const backend = await target.create(proxy.port, ns, HISTORY, { maxPending: 5, maxWaitMs: 60_000 });
      const hub = await startHub(backend);
      try {
        const ch = channel('http');
        assert.equal((await api(hub, 'POST', '/api/publish', { channel: ch, data: 0 })).status, 200);
        proxy.stall('toClient');
        const waiting = range(1, 5).map((i) => hub.server.hub.publish({ channel: ch, data: i }));
        await sleep(50);
        const refused = await api(hub, 'POST', '/api/publish', { channel: ch, data: 'refused' });
        assert.equal(refused.status, 429);
        assert.equal(refused.body.error.code, 'rate_limited');
        assert.equal(refused.headers.get('retry-after'), '1');
        proxy.flow('toClient');
        await Promise.all(waiting);
        const history = await api(hub, 'GET', `/api/channels/${ch}/history`);
        assert.deepEqual(
          history.body.publications.map((p: { data: unknown }) => p.data),
          [0, 1, 2, 3, 4, 5],
        );
      } finally {
        await hub.close();
        await target.cleanup(ns);
      }
    });
  });
}
