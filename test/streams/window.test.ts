/**
 * The roll-up window's bound, counted, not timed (docs/streams.md): a subscriber gets at most one
 * publication of a stream per window tick, so N appends over a measured duration D cost at most
 * D / window + a few deliveries, whatever the rate of appends. The slack covers the ticks at both
 * ends; the assertion is on counts, and the window arithmetic is what makes them small (with the
 * window off every append is its own delivery, checked too).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { token, until } from '../support/hub.ts';
import { openEventSource, streamQuery } from '../support/sse.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { StreamReader, startStreamHub, streamTokens, tokensOf } from './support.ts';

/** Stream publications a WebSocket and an SSE subscriber receive for one answer. */
async function deliveriesFor(windowMs: number, tokens: number, everyMs: number) {
  const hub = await startStreamHub('memory', { streamWindowMs: windowMs });
  const channel = 'rate:1';
  const jwt = await token();
  const ws = await WsTestClient.connect(hub.wsUrl, jwt);
  const sse = openEventSource(`${hub.url}/sse?${streamQuery([channel], { token: jwt })}`);
  try {
    await ws.ok('subscribe', { channel });
    await until(() => sse.opens > 0, 'the SSE stream');
    const answer = await streamTokens(hub, channel, tokensOf(tokens), everyMs);
    const readers = (): [StreamReader, StreamReader] => {
      const w = new StreamReader();
      const s = new StreamReader();
      for (const pub of ws.publications(channel)) w.take(pub);
      for (const pub of sse.messages) s.take(pub);
      return [w, s];
    };
    await until(
      () => readers().every((r) => r.statuses.get(answer.id) === 'done'),
      'the answer at both subscribers',
      20_000,
    );
    const [wsReader, sseReader] = readers();
    for (const reader of [wsReader, sseReader]) {
      assert.equal(reader.texts.get(answer.id), answer.text);
      reader.assertCoverage(answer.id, answer.last, 'subscriber');
    }
    return { ws: wsReader.items.length, sse: sseReader.items.length, elapsedMs: answer.elapsedMs };
  } finally {
    ws.close();
    sse.source.close();
    await hub.close();
  }
}

describe('the roll-up window', () => {
  it('bounds deliveries per subscriber to one per window: 100 tokens/s cost at most about 25/s', async () => {
    // As fast as the API answers one publish after another (over 100/s here), not paced.
    const tokens = 300;
    const { ws, sse, elapsedMs } = await deliveriesFor(40, tokens, 0);
    // At most one delivery per 40 ms tick while appends arrive, plus the ticks at either end.
    const bound = Math.floor(elapsedMs / 40) + 4;
    for (const [who, count] of [
      ['websocket', ws],
      ['sse', sse],
    ] as const) {
      assert.ok(
        count <= bound,
        `${who}: ${count} deliveries for ${tokens} appends in ${elapsedMs} ms (bound ${bound})`,
      );
      assert.ok(count < tokens / 2, `${who}: ${count} deliveries, merged`);
    }
    // The figure, for the docs: deliveries per second per subscriber.
    process.stdout.write(
      `# window 40 ms: ${tokens} appends in ${elapsedMs} ms (${Math.round((tokens * 1000) / elapsedMs)}/s); ` +
        `websocket ${ws}, sse ${sse} deliveries (${Math.round((ws * 1000) / elapsedMs)}/s)\n`,
    );
  });

  it('with the window off, every append is its own delivery', async () => {
    const tokens = 50;
    const { ws, sse } = await deliveriesFor(0, tokens, 2);
    assert.equal(ws, tokens + 2);
    assert.equal(sse, tokens + 2);
  });
});
