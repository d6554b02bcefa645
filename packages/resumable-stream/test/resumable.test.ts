/**
 * `@herald/resumable-stream` against two real hubs on Redis: a reader resumes a running stream on
 * the other node (whole, or from a character), the producer's own reader may leave, a finished
 * stream answers as `resumable-stream` does, and the producer carries on through the loss of the
 * node it writes to (behind a proxy, as behind a load balancer).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRedisBackend } from '@herald/broker-redis';
import { createResumableStreamContext, type ResumableStreamContext } from '@herald/resumable-stream';
import { API_KEY, type TestHub } from '../../../test/support/hub.ts';
import { startDsHub } from '../../../test/support/ds.ts';
import { deleteRedisPrefix, REDIS_URL, testPrefix } from '../../../test/support/redis.ts';
import { requireService, SERVICES } from '../../../test/support/services.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';

const prefix = testPrefix();
const hubs: TestHub[] = [];
let n = 0;
const id = (name: string): string => `${name}-${++n}`;

async function node(): Promise<TestHub> {
  const backend = await createRedisBackend({ url: REDIS_URL, prefix, history: { size: 10_000, ttlSeconds: 600 } });
  const hub = await startDsHub({ broker: backend.broker, presence: backend.presence });
  hubs.push(hub);
  return hub;
}

function context(url: string): ResumableStreamContext {
  return createResumableStreamContext({ url, token: API_KEY, waitUntil: null });
}

/**
 * A model's answer: `count` chunks, one every `everyMs`; line breaks of every kind and non-ASCII
 * text included. With `holdAt`, it stops before that chunk until `release()`: what a test does
 * mid-answer then happens mid-answer however slow the machine (a model that just kept typing could
 * finish first on a loaded CI run, and the test would find a finished stream).
 */
function model(
  count: number,
  everyMs: number,
  holdAt = count,
): { chunks: string[]; make: () => ReadableStream<string>; release: () => void } {
  const chunks = Array.from(
    { length: count },
    (_, i) => `data: {"delta":"tök${i}\\r\\n"}\r\n${i % 7 === 0 ? '\n' : ''}`,
  );
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let made = 0;
  return {
    chunks,
    release,
    make: () => {
      made++;
      assert.equal(made, 1, 'the stream is made once');
      let i = 0;
      return new ReadableStream<string>({
        async pull(controller) {
          await new Promise((r) => setTimeout(r, everyMs));
          if (i === holdAt) await released;
          if (i < chunks.length) controller.enqueue(chunks[i++] as string);
          else controller.close();
        },
      });
    },
  };
}

async function readAll(stream: ReadableStream<string> | null | undefined): Promise<string> {
  assert.ok(stream, 'a stream');
  let text = '';
  for await (const chunk of stream as unknown as AsyncIterable<string>) text += chunk;
  return text;
}

before(async () => {
  if (!(await SERVICES.redis.check())) return;
  await node();
  await node();
});

after(async () => {
  for (const hub of hubs) await hub.close();
  if (await SERVICES.redis.check()) await deleteRedisPrefix(REDIS_URL, prefix);
});

describe('resumable-stream on Herald, across nodes', () => {
  it('a reload resumes the running answer on the other node: all of it, or from a character', async (t) => {
    if (!(await requireService(t, 'redis'))) return;
    const [a, b] = hubs as [TestHub, TestHub];
    const streamId = id('answer');
    const answer = model(40, 5, 10);
    const producer = await context(a.url).createNewResumableStream(streamId, answer.make);
    // The first tab reads a few chunks, then reloads (its reader goes away; the producer does not).
    const reader = (producer as ReadableStream<string>).getReader();
    let seen = '';
    for (let i = 0; i < 5; i++) seen += (await reader.read()).value;
    await reader.cancel();
    assert.equal(seen, answer.chunks.slice(0, 5).join(''));
    const onB = context(b.url);
    assert.equal(await onB.hasExistingStream(streamId), true);
    const resumed = [await onB.resumeExistingStream(streamId), await onB.resumeExistingStream(streamId, seen.length)];
    answer.release();
    const [whole, rest] = await Promise.all(resumed.map(readAll));
    assert.equal(whole, answer.chunks.join(''));
    assert.equal(rest, answer.chunks.slice(5).join(''));
    assert.equal(await onB.hasExistingStream(streamId), 'DONE');
    assert.equal(
      await onB.resumeExistingStream(streamId),
      null,
      'a finished stream: null, as resumable-stream answers',
    );
    assert.equal(await onB.resumeExistingStream(id('never')), undefined);
    assert.equal(await onB.hasExistingStream(id('never')), null);
  });

  it('resumableStream: the first caller produces, the others follow the same answer', async (t) => {
    if (!(await requireService(t, 'redis'))) return;
    const [a, b] = hubs as [TestHub, TestHub];
    const streamId = id('shared');
    const answer = model(20, 5, 5);
    const first = await context(a.url).resumableStream(streamId, answer.make);
    const second = await context(b.url).resumableStream(streamId, answer.make);
    answer.release();
    const [x, y] = await Promise.all([readAll(first), readAll(second)]);
    assert.equal(x, answer.chunks.join(''));
    assert.equal(y, x);
    assert.equal(await context(b.url).resumableStream(streamId, answer.make), null);
  });

  it('the producer writes through the loss of the Herald node it was using', async (t) => {
    if (!(await requireService(t, 'redis'))) return;
    const [a, b] = hubs as [TestHub, TestHub];
    const proxy = new TcpProxy(a.port);
    await proxy.listen();
    t.after(() => proxy.close());
    const streamId = id('failover');
    const answer = model(40, 5, 10);
    const produced = readAll(await context(proxy.url).createNewResumableStream(streamId, answer.make));
    await new Promise((r) => setTimeout(r, 60));
    // Node A goes away mid-answer: its connections are cut, new ones go to node B.
    proxy.retarget(b.port);
    proxy.cutAll();
    hubs.splice(hubs.indexOf(a), 1);
    await a.close();
    answer.release();
    assert.equal(await produced, answer.chunks.join(''));
    assert.equal(await readAll(await readDone(b.url, streamId)), answer.chunks.join(''), 'all of it is in the stream');
  });
});

/** A finished stream's content, read through the Durable Streams API. */
async function readDone(url: string, streamId: string): Promise<ReadableStream<string>> {
  const response = await fetch(`${url}/ds/resumable-stream/${streamId}`, {
    headers: { authorization: `Bearer ${API_KEY}` },
  });
  const chunks = (await response.json()) as string[];
  return new ReadableStream<string>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}
