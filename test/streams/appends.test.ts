/**
 * Text streams end to end (docs/streams.md), on the memory broker, Redis and NATS: a producer
 * streams tokens at about 100 a second through the server API while real clients follow the
 * channel on every transport (ws, eventsource, long-poll, socket.io-client over WebSocket and
 * polling) through a proxy that cuts every connection twice mid-stream, and late joiners arrive
 * mid-stream on each transport. Every client ends with the exact text, each offset covered once and
 * in order; a joiner's first publication is the text so far, rolled up into one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { MODES, SioClient } from '../../packages/transport-socketio/test/support.ts';
import { sleep, token, until } from '../support/hub.ts';
import { PollLoop } from '../support/poll.ts';
import { requireService } from '../support/services.ts';
import { openEventSource, streamQuery, type EventSourceClient } from '../support/sse.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { StreamReader, startStreamHub, streamTokens, tokensOf, type BrokerKind } from './support.ts';

/** A raw `ws` client that resumes from the last offset it covered, feeding a StreamReader. */
class WsFollower {
  readonly reader = new StreamReader();
  drops = 0;
  #position: { offset: number; epoch: string } | undefined;
  #stopped = false;
  #socket: WebSocket | undefined;
  readonly done: Promise<void>;

  constructor(
    readonly url: string,
    readonly jwt: string,
    readonly channel: string,
  ) {
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    for (let i = 0; i < 50 && !this.#stopped; i++) {
      await new Promise<void>((resolve) => {
        const socket = new WebSocket(this.url);
        this.#socket = socket;
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
        socket.on('open', () => {
          socket.send(JSON.stringify({ id: 1, method: 'connect', params: { token: this.jwt } }));
          const since = this.#position;
          const params = { channel: this.channel, ...(since ? { since } : {}) };
          socket.send(JSON.stringify({ id: 2, method: 'subscribe', params }));
        });
        socket.on('message', (raw) => {
          const message = JSON.parse(raw.toString());
          if (message.id === 2 && message.result !== undefined) {
            for (const pub of message.result.publications ?? []) this.#take(pub);
            if (this.#position === undefined)
              this.#position = { offset: message.result.offset, epoch: message.result.epoch };
          } else if (message.push === 'pub') this.#take(message.pub);
        });
      });
      if (!this.#stopped) {
        this.drops++;
        await sleep(20);
      }
    }
  }

  #take(pub: any): void {
    this.reader.take(pub);
    if (this.#position === undefined || pub.offset > this.#position.offset) {
      this.#position = { offset: pub.offset, epoch: pub.epoch };
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#socket?.terminate();
    await this.done;
  }
}

/** Socket.IO: subscribes on every connect from the last offset it covered. */
function sioFollower(client: SioClient, channel: string): StreamReader {
  const reader = new StreamReader();
  let position: { offset: number; epoch: string } | undefined;
  client.socket.onAny((_event: string, ...args: any[]) => {
    const pub = args.length === 1 ? args[0] : args[1];
    if (pub?.channel !== channel || typeof pub.offset !== 'number') return;
    reader.take(pub);
    if (position === undefined || pub.offset > position.offset) position = { offset: pub.offset, epoch: pub.epoch };
  });
  const subscribe = (): void => {
    client.socket.emit('subscribe', { channel, ...(position ? { since: position } : {}) }, (ack: any) => {
      if (ack?.ok === true && position === undefined) position = { offset: ack.offset, epoch: ack.epoch };
    });
  };
  client.socket.on('connect', subscribe);
  if (client.socket.connected) subscribe();
  return reader;
}

function fromSse(client: EventSourceClient): StreamReader {
  const reader = new StreamReader();
  for (const pub of client.messages) reader.take(pub);
  return reader;
}

function fromPoll(loop: PollLoop): StreamReader {
  const reader = new StreamReader();
  for (const pub of loop.publications) reader.take(pub);
  return reader;
}

for (const kind of ['memory', 'redis', 'nats'] as const satisfies readonly BrokerKind[]) {
  describe(`text streams on ${kind}`, () => {
    it('every transport gets the text exactly once, in order, through cuts; joiners get the text so far as one publication', async (t) => {
      if (kind !== 'memory' && !(await requireService(t, kind))) return;
      const hub = await startStreamHub(kind);
      const proxy = new TcpProxy(hub.port);
      await proxy.listen();
      const channel = `answer:${kind}`;
      const jwt = await token();
      const sseUrl = (): string => `${proxy.url}/sse?${streamQuery([channel], { token: jwt })}`;
      const ws = new WsFollower(`${proxy.url.replace('http', 'ws')}/ws`, jwt, channel);
      const sse = openEventSource(sseUrl());
      const pollLoop = new PollLoop(() => proxy.url, { channels: [channel], token: jwt, timeout: 5 });
      const sio = await Promise.all(
        MODES.filter((m) => m !== 'upgrade').map((mode) =>
          SioClient.connect(proxy.url, mode, { auth: { token: jwt } }),
        ),
      );
      const sioReaders = sio.map((client) => sioFollower(client, channel));
      // Late joiners connect straight to the hub (no cuts): they join mid-stream once.
      let joiners:
        { ws: WsFollower; sse: EventSourceClient; poll: PollLoop; sio: SioClient; sioReader: StreamReader } | undefined;
      try {
        await until(() => ws.reader.covered.length === 0 && sse.opens > 0, 'followers connected');
        await sleep(300);
        const tokens = tokensOf(150);
        let cuts = 0;
        const answer = await streamTokens(hub, channel, tokens, 10, async (i) => {
          if (i === 40 || i === 100) {
            cuts++;
            for (let n = 0; n < 40 && !(ws.drops >= cuts && sse.errors >= cuts); n++) {
              proxy.cutAll();
              await sleep(5);
            }
          }
          if (i === 70) {
            const joinerSio = await SioClient.connect(hub.url, 'websocket', { auth: { token: jwt } });
            joiners = {
              ws: new WsFollower(hub.wsUrl, jwt, channel),
              sse: openEventSource(`${hub.url}/sse?${streamQuery([channel], { token: jwt })}`),
              poll: new PollLoop(() => hub.url, { channels: [channel], token: jwt, timeout: 5 }),
              sio: joinerSio,
              sioReader: sioFollower(joinerSio, channel),
            };
          }
        });
        const j = joiners!;
        const all = (): Array<[string, StreamReader]> => [
          ['ws', ws.reader],
          ['sse', fromSse(sse)],
          ['poll', fromPoll(pollLoop)],
          ...sioReaders.map((r, n): [string, StreamReader] => [`socket.io ${MODES[n]}`, r]),
          ['joiner ws', j.ws.reader],
          ['joiner sse', fromSse(j.sse)],
          ['joiner poll', fromPoll(j.poll)],
          ['joiner socket.io', j.sioReader],
        ];
        await until(
          () => all().every(([, r]) => r.statuses.get(answer.id) === 'done'),
          `the whole answer everywhere: ${all()
            .filter(([, r]) => r.statuses.get(answer.id) !== 'done')
            .map(([w]) => w)}`,
          30_000,
        );
        for (const [who, reader] of all()) {
          assert.equal(reader.texts.get(answer.id), answer.text, `${who}: the exact text`);
          assert.equal(reader.strays, 0, `${who}: no append to an unknown stream`);
          const joiner = who.startsWith('joiner');
          // Followers subscribed before the opening, joiners get it rolled up: both cover it to the close.
          reader.assertCoverage(answer.id, answer.last, who);
          if (joiner) {
            const first = reader.items[0];
            assert.equal(first.stream?.rolledUp, true, `${who}: the text so far comes rolled up`);
            assert.ok(first.data.length >= 'tN '.length * 60, `${who}: ${first.data.length} characters so far`);
          } else {
            // Appends merged: far fewer publications than tokens.
            assert.ok(reader.items.length < tokens.length, `${who}: ${reader.items.length} publications`);
          }
        }
        assert.ok(ws.drops >= 2 && sse.errors >= 2, `cut twice (ws ${ws.drops}, sse ${sse.errors})`);
        // History holds the answer as one publication.
        const history = await fetch(`${hub.url}/api/channels/${encodeURIComponent(channel)}/history`, {
          headers: { authorization: `Bearer ${jwt}` },
        }).then((r) => r.json());
        assert.equal(history.publications.length, 1);
        assert.deepEqual(history.publications[0].stream, { id: answer.id, status: 'done', rolledUp: true });
        assert.equal(history.publications[0].data, answer.text);
        const raw = await fetch(`${hub.url}/api/channels/${encodeURIComponent(channel)}/history?raw=1`, {
          headers: { authorization: `Bearer ${jwt}` },
        }).then((r) => r.json());
        assert.equal(raw.publications.length, tokens.length + 2);
      } finally {
        await ws.stop();
        sse.source.close();
        await pollLoop.stop();
        for (const client of sio) client.close();
        if (joiners !== undefined) {
          await joiners.ws.stop();
          joiners.sse.source.close();
          await joiners.poll.stop();
          joiners.sio.close();
        }
        await proxy.close();
        await hub.close();
        await hub.cleanup();
      }
    });
  });
}
