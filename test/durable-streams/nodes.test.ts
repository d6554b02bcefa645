/**
 * Durable Streams across `herald serve` processes on one Redis and on one NATS: a stream is the
 * same stream on every node (data, offsets, producer state, closure), concurrent writers on two
 * nodes each land exactly once, and when the node a reader and a writer use is killed (SIGKILL),
 * both carry on at the other node from where they were, exactly once and in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API_KEY } from '../support/hub.ts';
import { ds, readSse, type SseEvent } from '../support/ds.ts';
import { REQUIRE_SERVICES, SERVICES, requireService } from '../support/services.ts';
import { HubNode, buildOnce, deleteNatsNamespace, deleteRedisPrefix, sleep, uniquePrefix } from '../cluster/support.ts';

const SHARED = { redis: 'redis://127.0.0.1:6379', nats: 'nats://127.0.0.1:4222' } as const;
const TEXT = { 'content-type': 'text/plain' };

for (const kind of ['redis', 'nats'] as const) {
  describe(`Durable Streams on two hub processes on ${kind}`, { concurrency: false }, () => {
    const prefix = uniquePrefix();
    const url = kind === 'redis' ? `${SHARED.redis}/0?prefix=${prefix}` : `${SHARED.nats}?prefix=${prefix}`;
    let a: HubNode;
    let b: HubNode;

    before(async () => {
      if (!(await SERVICES[kind].check())) {
        if (REQUIRE_SERVICES) throw new Error(`needs ${SERVICES[kind].hint} (HERALD_REQUIRE_SERVICES=1)`);
        return;
      }
      await buildOnce();
      const env = { HERALD_DURABLE_STREAMS_LONG_POLL: '1' };
      [a, b] = await Promise.all([HubNode.start('A', { broker: url, env }), HubNode.start('B', { broker: url, env })]);
    });

    after(async () => {
      a?.kill();
      b?.kill();
      if (await SERVICES[kind].check()) {
        await (kind === 'redis' ? deleteRedisPrefix(SHARED.redis, prefix) : deleteNatsNamespace(SHARED.nats, prefix));
      }
    });

    it('one stream on every node: data, offsets, producer state and closure', { timeout: 30_000 }, async (t) => {
      if (!(await requireService(t, kind))) return;
      const p = `${prefix}/shared`;
      assert.equal((await ds(a.url, 'PUT', p, { headers: TEXT, body: 'a0 ' })).status, 201);
      assert.equal((await ds(b.url, 'PUT', p, { headers: TEXT })).status, 200, 'the same stream, seen from B');
      const producer = (seq: number, epoch = 0) => ({
        ...TEXT,
        'producer-id': 'writer',
        'producer-epoch': String(epoch),
        'producer-seq': String(seq),
      });
      assert.equal((await ds(b.url, 'POST', p, { headers: producer(0), body: 'b1 ' })).status, 200);
      assert.equal((await ds(a.url, 'POST', p, { headers: producer(0), body: 'b1 ' })).status, 204, 'a retry on A');
      const gap = await ds(a.url, 'POST', p, { headers: producer(5), body: 'x' });
      assert.deepEqual([gap.status, gap.headers.get('producer-expected-seq')], [409, '1']);
      assert.equal((await ds(a.url, 'POST', p, { headers: producer(0, 1), body: 'a2 ' })).status, 200);
      const stale = await ds(b.url, 'POST', p, { headers: producer(1, 0), body: 'x' });
      assert.deepEqual([stale.status, stale.headers.get('producer-epoch')], [403, '1']);
      assert.equal(
        (await ds(b.url, 'POST', p, { headers: { ...TEXT, 'stream-closed': 'true' }, body: 'end' })).status,
        204,
      );
      const refused = await ds(a.url, 'POST', p, { headers: TEXT, body: 'late' });
      assert.deepEqual([refused.status, refused.headers.get('stream-closed')], [409, 'true']);
      const reads = await Promise.all([ds(a.url, 'GET', p), ds(b.url, 'GET', p)]);
      for (const read of reads) {
        assert.equal(read.text, 'a0 b1 a2 end');
        assert.equal(read.headers.get('stream-closed'), 'true');
      }
      assert.equal(reads[0].headers.get('stream-next-offset'), reads[1].headers.get('stream-next-offset'));
    });

    it(
      'writers on both nodes at once: every append lands exactly once, offsets only grow',
      { timeout: 60_000 },
      async (t) => {
        if (!(await requireService(t, kind))) return;
        const p = `${prefix}/race`;
        await ds(a.url, 'PUT', p, { headers: TEXT });
        const sent = Array.from({ length: 40 }, (_, i) => `<${i}>`);
        const answers = await Promise.all(
          sent.map((body, i) => ds(i % 2 ? a.url : b.url, 'POST', p, { headers: TEXT, body })),
        );
        assert.deepEqual(new Set(answers.map((x) => x.status)), new Set([204]));
        const offsets = answers.map((x) => x.headers.get('stream-next-offset') as string);
        assert.equal(new Set(offsets).size, sent.length, 'every append has its own offset');
        const text = (await ds(b.url, 'GET', p)).text;
        for (const body of sent) assert.equal(text.split(body).length - 1, 1, `${body} exactly once`);
        // Each append sits at its own offset: reading from any of them gives exactly what followed.
        const byOffset = sent
          .map((body, i) => ({ body, offset: offsets[i] as string }))
          .sort((x, y) => (x.offset < y.offset ? -1 : 1));
        for (const k of [0, 19, 38]) {
          const from = await ds(a.url, 'GET', `${p}?offset=${byOffset[k]?.offset}`);
          assert.equal(
            from.text,
            byOffset
              .slice(k + 1)
              .map((x) => x.body)
              .join(''),
          );
        }
      },
    );

    it(
      'the node a reader and a writer use dies: both go on at the other node, exactly once, in order',
      { timeout: 60_000 },
      async (t) => {
        if (!(await requireService(t, kind))) return;
        const p = `${prefix}/failover`;
        await ds(a.url, 'PUT', p, { headers: TEXT });
        const tokens = Array.from({ length: 60 }, (_, i) => `t${i} `);
        const auth = { authorization: `Bearer ${API_KEY}` };
        // The reader: SSE on A, then on B from the last offset it was given.
        const received: string[] = [];
        let offset = '-1';
        let closed = false;
        const collect = (events: readonly SseEvent[], from: number): void => {
          for (const event of events.slice(from)) {
            if (event.type === 'data') received.push(event.data);
            else {
              const control = JSON.parse(event.data) as { streamNextOffset: string; streamClosed?: boolean };
              offset = control.streamNextOffset;
              closed ||= control.streamClosed === true;
            }
          }
        };
        const served: string[] = [];
        const reader = (async () => {
          for (const node of [a, b, b, b]) {
            if (closed) return;
            let seen = 0;
            served.push(node.name);
            await readSse(
              `${node.url}/ds/${p}?offset=${offset}&live=sse`,
              (events) => {
                collect(events, seen);
                seen = events.length;
                return closed;
              },
              { headers: auth, timeoutMs: 20_000 },
            ).catch(() => undefined);
          }
        })();
        // The writer: an idempotent producer on A; after A dies it retries the same tuple on B.
        let node = a;
        for (const [seq, body] of tokens.entries()) {
          const last = seq === tokens.length - 1;
          const headers = {
            ...TEXT,
            'producer-id': 'llm',
            'producer-epoch': '0',
            'producer-seq': String(seq),
            ...(last ? { 'stream-closed': 'true' } : {}),
          };
          for (;;) {
            const answer = await ds(node.url, 'POST', p, { headers, body }).catch(() => undefined);
            if (answer !== undefined && (answer.status === 200 || answer.status === 204)) break;
            node = b;
            await sleep(20);
          }
          if (seq === 25) a.kill('SIGKILL');
          await sleep(5);
        }
        await reader;
        assert.equal(closed, true, 'the reader saw the close');
        assert.deepEqual(served.slice(0, 2), ['A', 'B'], 'the reader moved from A to B');
        assert.equal(received.join(''), tokens.join(''), 'every token once, in order, across the node loss');
        const head = await ds(b.url, 'HEAD', p);
        assert.deepEqual([head.status, head.headers.get('stream-closed')], [200, 'true']);
        assert.equal((await ds(b.url, 'GET', p)).text, tokens.join(''));
      },
    );
  });
}
