/**
 * The protocol's own client, @durable-streams/client 0.2.6, against Herald (memory broker, with
 * the API key): create, append, catch-up, live reads over SSE and long-poll until the close, and
 * its IdempotentProducer (batched, pipelined, exactly once).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DurableStream, IdempotentProducer } from '@durable-streams/client';
import { API_KEY, type TestHub } from '../../../test/support/hub.ts';
import { startDsHub } from '../../../test/support/ds.ts';

let hub: TestHub;
let n = 0;
const headers = { Authorization: `Bearer ${API_KEY}` };
const url = (name: string): string => `${hub.url}/ds/client/${name}-${++n}`;

before(async () => {
  hub = await startDsHub();
});
after(() => hub.close());

describe('@durable-streams/client reads and writes Herald streams', () => {
  it('creates, appends JSON, and reads it back whole', async () => {
    const stream = await DurableStream.create({ url: url('json'), contentType: 'application/json', headers });
    await stream.append(JSON.stringify({ n: 1 }));
    await stream.append(JSON.stringify([1, 2]));
    const res = await stream.stream({ live: false });
    assert.deepEqual(await res.json(), [{ n: 1 }, [1, 2]]);
    const head = await stream.head();
    assert.equal(head.exists, true);
  });

  for (const live of ['sse', 'long-poll'] as const) {
    it(`follows a text stream live over ${live}, resuming where it stopped, until the close`, async () => {
      const target = url(live);
      const writer = await DurableStream.create({ url: target, contentType: 'text/plain', headers });
      await writer.append('one ');
      const first = await new DurableStream({ url: target, headers }).stream({ live: false });
      assert.equal(await first.text(), 'one ');
      const offset = first.offset;
      const reader = new DurableStream({ url: target, headers });
      const res = await reader.stream({ offset, live });
      const text = (async () => {
        let all = '';
        for await (const chunk of res.textStream()) all += chunk;
        return all;
      })();
      for (const word of ['two ', 'three ', 'four']) {
        await new Promise((r) => setTimeout(r, 30));
        await writer.append(word);
      }
      await writer.close();
      assert.equal(await text, 'two three four');
      assert.equal(res.streamClosed, true);
    });
  }

  it('IdempotentProducer: batches and pipelines, every message once and in order', async () => {
    const stream = await DurableStream.create({ url: url('producer'), contentType: 'application/json', headers });
    const producer = new IdempotentProducer(stream, 'producer-1', { lingerMs: 2, maxInFlight: 3 });
    for (let i = 0; i < 200; i++) producer.append(JSON.stringify({ i }));
    await producer.close();
    const res = await stream.stream({ live: false });
    const items = (await res.json()) as Array<{ i: number }>;
    assert.deepEqual(
      items.map((x) => x.i),
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.equal(res.streamClosed, true);
  });
});
