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
import { pageLength } from '@herald/server';
import type {
  Broker,
  BrokerEvents,
  ControlMessage,
  HistoryLimits,
  NodeRequest,
  PresenceStore,
  PublicationRecord,
  PublishDraft,
} from '@herald/server';
import { TopConflictError } from '@herald/server';

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

  /** Set by a case: what this node answers to node requests. */
  answer: ((message: NodeRequest) => Promise<unknown>) | undefined;

  request(message: NodeRequest): Promise<unknown> {
    return this.answer === undefined ? Promise.resolve(null) : this.answer(message);
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

    test('history pages within maxBytes: as many as fit, at least one, and the next page continues', async ({
      a,
      b,
      channel,
    }) => {
      const ch = channel('pages');
      const records: PublicationRecord[] = [];
      for (let i = 1; i <= 20; i++) records.push((await a.broker.publish(draft(ch, 'p'.repeat(100 + i)))).record);
      const epoch = records[0]?.epoch ?? '';
      const maxBytes = (records[0]?.json.length ?? 0) * 4 + 10;
      const expected = pageLength(records, maxBytes);
      assert.ok(expected >= 3 && expected < 20, `a page of ${expected}`);
      const pages: number[][] = [];
      let since = { offset: 0, epoch };
      for (let n = 0; n < 20 && since.offset < 20; n++) {
        const page = await b.broker.history(ch, { since, maxBytes });
        assert.equal(page.recovered, true);
        assert.deepEqual(page.top, { offset: 20, epoch });
        assert.ok(page.publications.length > 0, 'every page makes progress');
        pages.push(offsets(page.publications));
        since = { offset: page.publications.at(-1)?.offset ?? since.offset, epoch };
      }
      assert.deepEqual(pages.flat(), range(1, 20), 'pages continue each other with nothing skipped');
      assert.equal(pages[0]?.length, expected, 'the shared page rule (pageLength)');
      const one = await b.broker.history(ch, { since: { offset: 0, epoch }, maxBytes: 1 });
      assert.deepEqual(offsets(one.publications), [1], 'at least one, even past the bound');
      const newest = await a.broker.history(ch, { limit: 20, maxBytes });
      assert.deepEqual(offsets(newest.publications), range(21 - pageLength(records, maxBytes, true), 20));
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

    test('compare-and-append: stored only while the top is the expected one, on any node', async ({
      a,
      b,
      channel,
    }) => {
      const ch = channel('expected-top');
      await a.broker.subscribe(ch);
      const empty = (await b.broker.history(ch, { limit: 0 })).top;
      const first = await a.broker.publish(draft(ch, 1, { expectedTop: empty }));
      assert.deepEqual({ offset: first.record.offset, epoch: first.record.epoch }, { offset: 1, epoch: empty.epoch });
      const second = await b.broker.publish(draft(ch, 2, { expectedTop: { offset: 1, epoch: empty.epoch } }));
      assert.equal(second.record.offset, 2);
      // A top that moved, one ahead, or another epoch: refused, and nothing stored or delivered.
      for (const expectedTop of [
        { offset: 1, epoch: empty.epoch },
        { offset: 3, epoch: empty.epoch },
        { offset: 2, epoch: `${empty.epoch}x` },
      ]) {
        await assert.rejects(
          (expectedTop.offset === 1 ? a : b).broker.publish(draft(ch, 'stale', { expectedTop })),
          TopConflictError,
        );
      }
      assert.deepEqual(offsets((await a.broker.history(ch, {})).publications), [1, 2]);
      // Racing writers that read the same top: exactly one lands, the others are told.
      const top = { offset: 2, epoch: empty.epoch };
      const outcomes = await Promise.allSettled(
        range(1, 6).map((i) => (i % 2 ? a : b).broker.publish(draft(ch, `race-${i}`, { expectedTop: top }))),
      );
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
      for (const o of outcomes) if (o.status === 'rejected') assert.ok(o.reason instanceof TopConflictError);
      await a.broker.publish(draft(ch, 'plain'));
      await until(() => a.events.of(ch).length === 4, 'four publications');
      assert.deepEqual(offsets(a.events.of(ch)), [1, 2, 3, 4]);
    });

    test('metadata: compare-and-set on versions that never repeat, shared by every node', async ({ a, b, channel }) => {
      const store = a.broker.metadata;
      const other = b.broker.metadata;
      assert.ok(store !== undefined && other !== undefined, 'the broker offers a metadata store');
      const key = channel('meta');
      assert.equal(await store.get(key), undefined);
      const v1 = await store.put(key, 'one', 0);
      assert.ok(v1 !== undefined && v1 > 0);
      assert.equal(await other.put(key, 'again', 0), undefined, 'create refused: the key exists');
      assert.deepEqual(await other.get(key), { value: 'one', version: v1 });
      const v2 = await other.put(key, 'two', v1);
      assert.ok(v2 !== undefined && v2 > v1);
      assert.equal(await store.put(key, 'stale', v1), undefined);
      assert.equal(await store.delete(key, v1), false);
      assert.deepEqual(await store.get(key), { value: 'two', version: v2 });
      assert.equal(await other.delete(key, v2), true);
      assert.equal(await store.get(key), undefined);
      assert.equal(await store.delete(key), false, 'nothing left to delete');
      const v3 = await store.put(key, 'three', 0);
      assert.ok(v3 !== undefined && v3 > v2, 'a version never comes back after a delete');
      const v4 = await other.put(key, 'four');
      assert.ok(v4 !== undefined && v4 > v3, 'a write without a condition');
      assert.equal(await store.delete(key), true);
      // Racing writers with the same version: exactly one wins.
      const v5 = (await store.put(key, 'base', 0)) ?? 0;
      const won = await Promise.all(range(1, 6).map((i) => (i % 2 ? store : other).put(key, `w${i}`, v5)));
      assert.equal(won.filter((v) => v !== undefined).length, 1);
      const text = `{"ünïcode":"✓","nl":"a\nb"}`;
      await store.put(key, text);
      assert.equal((await other.get(key))?.value, text);
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

    test('request: every node answers, the asking one included; a failing node answers null', async ({
      a,
      b,
      multiNode,
    }) => {
      a.events.answer = async (m) => ({ node: 'a', kind: m.kind });
      if (multiNode)
        b.events.answer = async (m) => ({ node: 'b', kind: m.kind, user: m.kind === 'user_sessions' && m.user });
      const replies = await a.broker.request({ kind: 'info' }, 5_000);
      assert.equal(replies.missing, 0);
      const nodes = (replies.answers as { node: string }[]).map((x) => x.node).sort();
      assert.deepEqual(nodes, multiNode ? ['a', 'b'] : ['a']);
      const fromB = await b.broker.request({ kind: 'user_sessions', user: 'alice' }, 5_000);
      assert.equal(fromB.answers.length, multiNode ? 2 : 1);
      if (multiNode)
        assert.ok(
          fromB.answers.some((x) => (x as { user: string }).user === 'alice'),
          'the message arrived whole',
        );
      a.events.answer = () => Promise.reject(new Error('broken handler'));
      const withFailure = await b.broker.request({ kind: 'info' }, 5_000);
      assert.equal(withFailure.missing, 0);
      assert.ok(withFailure.answers.includes(null), 'a failing node answers null');
    });

    test('removeHistory: a new epoch on every node; an old position is not recovered; offsets restart', async ({
      a,
      b,
      channel,
    }) => {
      const ch = channel('remove-history');
      await b.broker.subscribe(ch);
      for (let i = 1; i <= 3; i++) await a.broker.publish(draft(ch, i));
      const before = await a.broker.history(ch, { limit: 10 });
      assert.equal(before.top.offset, 3);
      await a.broker.removeHistory(ch);
      for (const node of [a, b]) {
        const after = await node.broker.history(ch, { since: { offset: 1, epoch: before.top.epoch }, limit: 10 });
        assert.equal(after.recovered, false, 'a position from before is not recovered');
        assert.deepEqual(after.publications, []);
        assert.notEqual(after.top.epoch, before.top.epoch);
        assert.equal(after.top.offset, 0);
      }
      const next = await b.broker.publish(draft(ch, 'fresh'));
      assert.equal(next.record.offset, 1);
      assert.notEqual(next.record.epoch, before.top.epoch);
      await until(() => b.events.of(ch).some((r) => r.epoch === next.record.epoch), 'the publication in the new epoch');
      await a.broker.removeHistory(channel('never-used'));
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
