/**
 * Text streams in the SDK (docs/streams.md): the `stream` event carries each stream's text so far,
 * merged from appends and roll-ups alike, on every transport, through cut connections; a client
 * that subscribes mid-stream starts from the text so far. The SDK's gap check accepts rolled-up
 * publications (they cover `append.from` to their offset), so no resync (4007) is ever needed.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { StreamText } from '@herald/client';
import { startHub, token, until } from '../../../test/support/hub.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import { streamTokens, tokensOf } from '../../../test/streams/support.ts';
import { closeClients, newClient, states, TRANSPORTS } from './helpers.ts';

afterEach(closeClients);

for (const transport of TRANSPORTS) {
  describe(`text streams over ${transport}`, () => {
    it('the stream event ends with the exact text, through cuts, and for a client joining mid-stream', async () => {
      const hub = await startHub();
      const proxy = new TcpProxy(hub.port);
      await proxy.listen();
      try {
        const channel = `sdk-stream:${transport}`;
        const follower = newClient(proxy.url, { transports: [transport], token: () => token() });
        const seen = states(follower);
        const sub = follower.subscribe(channel);
        const texts: StreamText[] = [];
        sub.on('stream', (s) => texts.push(s));
        await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
        const joinerTexts: StreamText[] = [];
        const answer = await streamTokens(hub, channel, tokensOf(120), 8, (i) => {
          if (i === 30 || i === 80) proxy.cutAll();
          if (i === 60) {
            const joiner = newClient(hub.url, { transports: [transport], token: () => token() });
            joiner.subscribe(channel).on('stream', (s) => joinerTexts.push(s));
          }
        });
        for (const list of [texts, joinerTexts]) {
          await until(() => list.at(-1)?.status === 'done', 'the closed stream', 20_000);
          assert.equal(list.at(-1)?.text, answer.text);
          assert.equal(list.at(-1)?.id, answer.id);
          // The text only ever grows: each event extends the one before.
          for (let i = 1; i < list.length; i++) assert.ok(list[i]!.text.startsWith(list[i - 1]!.text));
        }
        assert.ok(joinerTexts[0]!.text.length >= 'tN '.length * 50, 'the joiner started from the text so far');
        assert.ok(texts.length < 120, `appends merged: ${texts.length} events`);
        assert.equal(seen.filter((s) => s.state === 'disconnected' && s.error.closeCode === 4007).length, 0);
      } finally {
        await proxy.close();
        await hub.close();
      }
    });

    it('a client opens, appends to and closes a stream with publish, within its token', async () => {
      const hub = await startHub();
      try {
        const channel = `sdk-publish:${transport}`;
        const writer = newClient(hub.url, { transports: [transport], token: () => token({ publish: [channel] }) });
        const reader = newClient(hub.url, { transports: [transport], token: () => token() });
        const sub = reader.subscribe(channel);
        const texts: StreamText[] = [];
        sub.on('stream', (s) => texts.push(s));
        await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
        const { offset: id } = await writer.publish(channel, 'Hel', { stream: { status: 'open' } });
        for (const piece of ['lo', ', ', 'world']) await writer.publish(channel, piece, { append: { to: id } });
        await writer.publish(channel, '!', { append: { to: id, status: 'done' } });
        await until(() => texts.at(-1)?.status === 'done', 'the closed stream', 10_000);
        assert.deepEqual(texts.at(-1), { id, text: 'Hello, world!', status: 'done' });
        await assert.rejects(
          writer.publish(`other:${transport}`, 'x', { stream: { status: 'open' } }),
          /forbidden|not permitted/,
        );
      } finally {
        await hub.close();
      }
    });
  });
}
