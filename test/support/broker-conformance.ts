/**
 * One conformance suite for the Broker and PresenceStore interfaces (packages/server/src/broker/
 * broker.ts), run against every implementation: memory, Redis, NATS (STYLE.md principle 7).
 * A target creates fresh backends; each case starts one or two nodes on it (two brokers sharing
 * the backend, as two hub processes would) and checks only what the interfaces promise.
 * Brokers that run a single node (memory) run the multi-node cases with both "nodes" the same.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import { publicationJson, type ClientInfo } from '@herald/protocol';
import type {
  Broker,
  BrokerEvents,
  ControlMessage,
  HistoryLimits,
  PresenceStore,
  PublicationRecord,
  PublishDraft,
} from '@herald/server';

export interface ConformanceNode {
  readonly broker: Broker;
  readonly presence: PresenceStore;
}

export interface ConformanceBackend {
  /** `count` nodes sharing one backend, not started yet. */
  readonly nodes: readonly ConformanceNode[];
  /** Deletes what the backend stored for this case; runs after the nodes closed. */
  cleanup(): Promise<void>;
}

export interface ConformanceTarget {
  readonly name: string;
  /** Whether several nodes can share one backend; when false, cases run with one node. */
  readonly multiNode: boolean;
  /** Skips (or fails in CI) when the service is missing: call `requireService` here. */
  available(t: TestContext): Promise<boolean>;
  /** A backend isolated from every other case and run (its own key prefix or stream names). */
  create(limits: HistoryLimits, count: number): Promise<ConformanceBackend>;
}

/** What a node's broker called back with. */
class Recorder implements BrokerEvents {
  readonly publications: PublicationRecord[] = [];
  readonly controls: ControlMessage[] = [];
  readonly readinessChanges: boolean[] = [];

  publication(record: PublicationRecord): void {
    this.publications.push(record);
  }

  control(message: ControlMessage): void {
    this.controls.push(message);
  }

  readiness(ready: boolean): void {
    this.readinessChanges.push(ready);
  }

  of(channel: string): PublicationRecord[] {
    return this.publications.filter((r) => r.channel === channel);
  }
}

interface Node extends ConformanceNode {
  readonly events: Recorder;
}

interface Case {
  readonly a: Node;
  /** The second node; the same as `a` for single-node brokers. */
  readonly b: Node;
  readonly multiNode: boolean;
  /** A channel name unique to this run. */
  channel(name: string): string;
}

const LIMITS: HistoryLimits = { size: 100, ttlSeconds: 600 };

async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function draft(channel: string, data: unknown, extra: Partial<PublishDraft> = {}): PublishDraft {
  return { channel, dataJson: JSON.stringify(data), ts: Date.now(), ephemeral: false, ...extra };
}

/** The JSON a broker must produce for a draft: the codec's, with its offset and epoch. */
function expectedJson(d: PublishDraft, record: PublicationRecord): string {
  return record.offset === 0
    ? publicationJson(d)
    : publicationJson({ ...d, offset: record.offset, epoch: record.epoch });
}

function offsets(records: readonly PublicationRecord[]): number[] {
  return records.map((r) => r.offset);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export function brokerConformance(target: ConformanceTarget): void {
  /** Registers a case with fresh nodes; they close and the backend is cleaned after it. */
  const test = (title: string, body: (c: Case) => Promise<void>, limits: HistoryLimits = LIMITS): void => {
    it(title, async (t) => {
      if (!(await target.available(t))) return;
      const count = target.multiNode ? 2 : 1;
      const backend = await target.create(limits, count);
      const nodes: Node[] = backend.nodes.map((n) => ({ ...n, events: new Recorder() }));
      try {
        for (const node of nodes) await node.broker.start(node.events);
        for (const node of nodes) assert.equal(node.broker.ready, true, 'ready once started');
        const run = randomBytes(5).toString('hex');
        const a = nodes[0] as Node;
        await body({ a, b: nodes[1] ?? a, multiNode: nodes.length > 1, channel: (name) => `conf-${run}:${name}` });
      } finally {
        for (const node of nodes) {
          await node.broker.close();
          await node.presence.close();
        }
        await backend.cleanup();
      }
    });
  };

  describe(`${target.name} broker conformance`, () => {
    test('offsets start at 1 and grow by 1 on every node; the epoch is stable; the JSON is the codec’s', async ({
      a,
      b,
      channel,
    }) => {
      const ch = channel('offsets');
      const records: PublicationRecord[] = [];
      for (let i = 0; i < 6; i++) {
        const d = draft(ch, { i }, i % 3 === 0 ? { event: 'tick' } : {});
        const { record, duplicate } = await (i % 2 === 0 ? a : b).broker.publish(d);
        assert.equal(duplicate, false);
        assert.equal(record.channel, ch);
        assert.equal(record.json, expectedJson(d, record));
        assert.equal(record.event, d.event);
        records.push(record);
      }
      assert.deepEqual(offsets(records), range(1, 6));
      const epoch = records[0]?.epoch ?? '';
      assert.ok(epoch.length > 0);
      for (const record of records) assert.equal(record.epoch, epoch);
      for (const node of [a, b]) {
        const top = await node.broker.history(ch, { limit: 0 });
        assert.deepEqual(top, { publications: [], top: { offset: 6, epoch } });
      }
      const parsed = JSON.parse(records[3]?.json ?? '');
      assert.deepEqual(
        { channel: parsed.channel, offset: parsed.offset, epoch: parsed.epoch, data: parsed.data, event: parsed.event },
        { channel: ch, offset: 4, epoch, data: { i: 3 }, event: 'tick' },
      );
    });

    test('an unknown channel gets a stable epoch that its first publication continues', async ({ a, b, channel }) => {
      const ch = channel('fresh');
      const first = await a.broker.history(ch, { limit: 0 });
      assert.equal(first.top.offset, 0);
      assert.ok(first.top.epoch.length > 0);
      assert.deepEqual((await b.broker.history(ch, { limit: 0 })).top, first.top);
      const empty = await b.broker.history(ch, { since: first.top });
      assert.deepEqual(empty, { publications: [], top: first.top, recovered: true });
      const { record } = await b.broker.publish(draft(ch, 'first'));
      assert.deepEqual({ offset: record.offset, epoch: record.epoch }, { offset: 1, epoch: first.top.epoch });
      const resumed = await a.broker.history(ch, { since: first.top });
      assert.equal(resumed.recovered, true);
      assert.deepEqual(resumed.publications, [record]);
    });

    test('history since a position: what followed it, oldest first, within the limit', async ({ a, b, channel }) => {
      const ch = channel('since');
      const records: PublicationRecord[] = [];
      for (let i = 1; i <= 10; i++) records.push((await a.broker.publish(draft(ch, i))).record);
      const epoch = records[0]?.epoch ?? '';
      const since = await b.broker.history(ch, { since: { offset: 3, epoch } });
      assert.equal(since.recovered, true);
      assert.deepEqual(since.top, { offset: 10, epoch });
      assert.deepEqual(since.publications, records.slice(3));
      const limited = await b.broker.history(ch, { since: { offset: 3, epoch }, limit: 2 });
      assert.equal(limited.recovered, true);
      assert.deepEqual(offsets(limited.publications), [4, 5]);
      assert.deepEqual(await b.broker.history(ch, { since: { offset: 10, epoch } }), {
        publications: [],
        top: { offset: 10, epoch },
        recovered: true,
      });
      const latest = await a.broker.history(ch, { limit: 3 });
      assert.equal(latest.recovered, undefined);
      assert.deepEqual(latest.publications, records.slice(7));
      assert.deepEqual(offsets((await a.broker.history(ch, {})).publications), range(1, 10));
    });

    test('history: a position ahead of the top or of another epoch is not recovered', async ({ a, b, channel }) => {
      const ch = channel('mismatch');
      for (let i = 0; i < 3; i++) await a.broker.publish(draft(ch, i));
      const { top } = await b.broker.history(ch, { limit: 0 });
      for (const since of [
        { offset: 4, epoch: top.epoch },
        { offset: 1, epoch: `${top.epoch}x` },
        { offset: 0, epoch: 'another-epoch' },
      ]) {
        assert.deepEqual(
          await b.broker.history(ch, { since }),
          { publications: [], top, recovered: false },
          `${since.offset}/${since.epoch}`,
        );
      }
    });

    test(
      'history: only the newest `size` publications are retained',
      async ({ a, b, channel }) => {
        const ch = channel('size');
        const records: PublicationRecord[] = [];
        for (let i = 1; i <= 7; i++) records.push((await (i % 2 ? a : b).broker.publish(draft(ch, i))).record);
        const epoch = records[0]?.epoch ?? '';
        const top = { offset: 7, epoch };
        assert.deepEqual(await b.broker.history(ch, { since: { offset: 3, epoch } }), {
          publications: [],
          top,
          recovered: false,
        });
        const kept = await a.broker.history(ch, { since: { offset: 4, epoch } });
        assert.equal(kept.recovered, true);
        assert.deepEqual(kept.publications, records.slice(4));
        assert.deepEqual((await b.broker.history(ch, {})).publications, records.slice(4));
        assert.deepEqual(offsets((await b.broker.history(ch, { limit: 2 })).publications), [6, 7]);
      },
      { size: 3, ttlSeconds: 600 },
    );

    test(
      'history: publications older than the ttl are gone, the position stays',
      async ({ a, b, channel }) => {
        const ch = channel('ttl');
        const old1 = (await a.broker.publish(draft(ch, 1))).record;
        await a.broker.publish(draft(ch, 2));
        await sleep(1_300);
        const fresh = (await b.broker.publish(draft(ch, 3))).record;
        const epoch = old1.epoch;
        assert.equal(fresh.epoch, epoch);
        assert.equal(fresh.offset, 3);
        const top = { offset: 3, epoch };
        assert.deepEqual(await a.broker.history(ch, { since: { offset: 1, epoch } }), {
          publications: [],
          top,
          recovered: false,
        });
        assert.deepEqual(await b.broker.history(ch, { since: { offset: 2, epoch } }), {
          publications: [fresh],
          top,
          recovered: true,
        });
        assert.deepEqual((await a.broker.history(ch, {})).publications, [fresh]);
        await sleep(1_300);
        // Everything expired: a client that has it all still resumes; the stream keeps its place.
        assert.deepEqual(await b.broker.history(ch, { since: top }), { publications: [], top, recovered: true });
        assert.deepEqual(await a.broker.history(ch, {}), { publications: [], top });
        assert.equal((await a.broker.publish(draft(ch, 4))).record.offset, 4);
      },
      { size: 100, ttlSeconds: 1 },
    );

    test('idempotency: the same key on the same channel is applied once, on any node', async ({ a, b, channel }) => {
      const ch = channel('idem');
      const other = channel('idem-other');
      const first = await a.broker.publish(draft(ch, 'once', { idempotencyKey: 'order-42', event: 'created' }));
      assert.equal(first.duplicate, false);
      const again = await b.broker.publish(draft(ch, 'twice', { idempotencyKey: 'order-42', event: 'created' }));
      assert.equal(again.duplicate, true);
      assert.deepEqual(again.record, first.record);
      const elsewhere = await b.broker.publish(draft(other, 'once', { idempotencyKey: 'order-42' }));
      assert.equal(elsewhere.duplicate, false);
      assert.equal(elsewhere.record.offset, 1);
      assert.deepEqual(offsets((await a.broker.history(ch, {})).publications), [1]);
      const eph = await a.broker.publish(draft(ch, 'typing', { ephemeral: true, idempotencyKey: 'e-1' }));
      const ephAgain = await b.broker.publish(draft(ch, 'typing', { ephemeral: true, idempotencyKey: 'e-1' }));
      assert.equal(eph.duplicate, false);
      assert.equal(ephAgain.duplicate, true);
      assert.deepEqual(ephAgain.record, eph.record);
    });

    test('ephemeral publications are delivered live and never stored', async ({ a, b, channel }) => {
      const ch = channel('ephemeral');
      await a.broker.subscribe(ch);
      const d = draft(ch, { typing: true }, { ephemeral: true, event: 'typing' });
      const { record } = await b.broker.publish(d);
      assert.deepEqual(record, { channel: ch, offset: 0, epoch: '', event: 'typing', json: publicationJson(d) });
      await until(() => a.events.of(ch).length === 1, 'the ephemeral publication');
      assert.deepEqual(a.events.of(ch)[0], record);
      const history = await b.broker.history(ch, {});
      assert.deepEqual(history.publications, []);
      assert.equal(history.top.offset, 0);
    });

    test('publications reach every subscribed node once, in offset order, and no unsubscribed one', async ({
      a,
      b,
      channel,
      multiNode,
    }) => {
      const ch = channel('fanout');
      const sentinel = channel('sentinel');
      await a.broker.subscribe(ch);
      await b.broker.subscribe(ch);
      await b.broker.subscribe(sentinel);
      // Concurrent publishers on both nodes: the broker decides one order, everyone sees it.
      const sent = await Promise.all(range(1, 40).map((i) => (i % 2 ? a : b).broker.publish(draft(ch, i))));
      assert.deepEqual(
        sent.map((s) => s.record.offset).sort((x, y) => x - y),
        range(1, 40),
      );
      for (const node of multiNode ? [a, b] : [a]) {
        await until(() => node.events.of(ch).length >= 40, 'forty publications');
        assert.deepEqual(offsets(node.events.of(ch)), range(1, 40));
      }
      await b.broker.unsubscribe(ch);
      await a.broker.publish(draft(ch, 'after'));
      await a.broker.publish(draft(sentinel, 'flush'));
      await until(() => b.events.of(sentinel).length === 1, 'the sentinel');
      assert.equal(b.events.of(ch).length, 40, 'nothing after unsubscribe');
      if (multiNode) await until(() => a.events.of(ch).length === 41, 'the publication on the node still subscribed');
    });

    test('join/leave go to the channel’s subscribers; disconnect_user to every node', async ({
      a,
      b,
      channel,
      multiNode,
    }) => {
      const ch = channel('control');
      const sentinel = channel('control-sentinel');
      await b.broker.subscribe(ch);
      await a.broker.subscribe(sentinel);
      const client: ClientInfo = { clientId: 'c-1', userId: 'alice', info: { name: 'Alice' } };
      await a.broker.broadcast({ kind: 'join', channel: ch, client });
      await a.broker.broadcast({ kind: 'leave', channel: ch, client });
      await until(() => b.events.controls.length >= 2, 'join and leave');
      assert.deepEqual(b.events.controls.slice(0, 2), [
        { kind: 'join', channel: ch, client },
        { kind: 'leave', channel: ch, client },
      ]);
      await b.broker.broadcast({ kind: 'join', channel: sentinel, client });
      await until(() => a.events.controls.some((m) => m.kind === 'join' && m.channel === sentinel), 'the sentinel');
      if (multiNode)
        assert.equal(a.events.controls.filter((m) => m.kind !== 'disconnect_user' && m.channel === ch).length, 0);
      const bye: ControlMessage = { kind: 'disconnect_user', userId: 'alice', code: 4000, reason: 'banned' };
      await b.broker.broadcast(bye);
      for (const node of [a, b])
        await until(() => node.events.controls.some((m) => m.kind === 'disconnect_user'), 'disconnect_user');
      assert.deepEqual(
        a.events.controls.find((m) => m.kind === 'disconnect_user'),
        bye,
      );
    });

    test('presence: add, list, remove and channels, shared by every node', async ({ a, b, channel }) => {
      const ch = channel('presence');
      const alice: ClientInfo = { clientId: 'client-a', userId: 'alice', info: { name: 'Alice' } };
      const bob: ClientInfo = { clientId: 'client-b', userId: 'bob' };
      await a.presence.add(ch, alice);
      await b.presence.add(ch, bob);
      const byId = (list: ClientInfo[]): ClientInfo[] => [...list].sort((x, y) => x.clientId.localeCompare(y.clientId));
      for (const node of [a, b]) assert.deepEqual(byId(await node.presence.list(ch)), [alice, bob]);
      const counted = (await a.presence.channels()).find((c) => c.channel === ch);
      assert.deepEqual(counted, { channel: ch, subscribers: 2 });
      await a.presence.remove(ch, alice.clientId);
      assert.deepEqual(await b.presence.list(ch), [bob]);
      await b.presence.remove(ch, bob.clientId);
      assert.deepEqual(await a.presence.list(ch), []);
      assert.equal(
        (await b.presence.channels()).find((c) => c.channel === ch),
        undefined,
      );
      assert.deepEqual(await a.presence.list(channel('nobody')), []);
    });
  });
}
