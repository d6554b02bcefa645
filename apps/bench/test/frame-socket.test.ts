/**
 * The bench's WebSocket reader against a real `ws` server: messages of every length class in one
 * TCP read or split across reads, fragmented messages, pings, the close handshake, and a refused
 * handshake. And the times it reads out of each bench publication.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Writable } from 'node:stream';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { FrameSocket } from '../src/frame-socket.ts';
import { textFrame } from '../src/ws-frame.ts';
import { benchPayload, readTimes, type Times } from '../src/payload.ts';

describe('FrameSocket', () => {
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  /** What the test has each server-side connection do once it opens. */
  let onConnection: (ws: WebSocket) => void = () => {};

  before(async () => {
    server = createServer((_req, res) => res.writeHead(404).end());
    wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => {
      if (req.url === '/refuse') {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    wss.close();
    server.close();
    await once(server, 'close');
  });

  /** Opens a FrameSocket, collects its messages as text, and resolves how it went. */
  function open(path = '/'): {
    socket: FrameSocket;
    messages: string[];
    opened: Promise<void>;
    gone: Promise<string>;
  } {
    const messages: string[] = [];
    let opened!: () => void;
    let gone!: (reason: string) => void;
    const result = {
      messages,
      opened: new Promise<void>((resolve) => (opened = resolve)),
      gone: new Promise<string>((resolve) => (gone = resolve)),
      socket: new FrameSocket(`${url}${path}`, {
        open: () => opened(),
        message: (data, start, end) => messages.push(data.toString('utf8', start, end)),
        gone: (reason) => gone(reason),
      }),
    };
    return result;
  }

  it('reads messages of every length class, whole and fragmented, sends masked frames, answers pings', async () => {
    const sizes = [0, 1, 125, 126, 65_535, 65_536, 300_000];
    const texts = sizes.map((n, i) => String(i % 10).repeat(n));
    let pongs = 0;
    const received: string[] = [];
    onConnection = (ws) => {
      ws.on('pong', () => pongs++);
      ws.on('message', (data) => {
        received.push(String(data));
        if (received.length < 3) return;
        ws.ping('are you there');
        for (const text of texts) ws.send(text);
        // One message in three frames, with a ping between its fragments (RFC 6455 5.4).
        ws.send('frag', { fin: false });
        ws.ping();
        ws.send('men', { fin: false });
        ws.send('ted', { fin: true });
        ws.send('last');
      });
    };
    const client = open();
    await client.opened;
    const long = 'y'.repeat(70_000); // a 64-bit length: every header size of a masked frame
    client.socket.send('{"id":1}', '{"id":2,"é":"ü"}', long);
    // The second pong is on its way back when the last message arrives: wait for it too, bounded.
    const deadline = Date.now() + 10_000;
    while ((client.messages.length < texts.length + 2 || pongs < 2) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    try {
      assert.deepEqual(received, ['{"id":1}', '{"id":2,"é":"ü"}', long], 'the server unmasked every frame');
      assert.deepEqual(client.messages, [...texts, 'fragmented', 'last']);
      assert.equal(pongs, 2, 'both pings answered');
    } finally {
      client.socket.terminate();
    }
    assert.equal(await client.gone, 'terminated');
  });

  it('reports the close code the server sent', async () => {
    onConnection = (ws) => ws.close(4004, 'too slow');
    const client = open();
    assert.equal(await client.gone, 'closed with 4004');
  });

  it('reports a refused handshake', async () => {
    const client = open('/refuse');
    assert.match(await client.gone, /status 403/);
  });
});

describe('readTimes', () => {
  const times: Times = { bt: -1, st: -1 };
  const read = (text: string): false | Times => {
    // Inside a larger buffer, as the reader hands over a range of a TCP read.
    const data = Buffer.from(`xx${text}yy`);
    return readTimes(data, 2, data.length - 2, times) && { ...times };
  };

  it('reads the publish and scheduled times out of a publication, wherever it sits', () => {
    const withSchedule = JSON.stringify(benchPayload(123_456_789, 3, 100, 123_456_000));
    const without = JSON.stringify(benchPayload(987_654_321, 4, 100));
    assert.deepEqual(read(`{"channel":"bench","offset":7,"data":${withSchedule}}`), {
      bt: 123_456_789,
      st: 123_456_000,
    });
    assert.deepEqual(read(`42["message",${without}]`), { bt: 987_654_321, st: -1 });
    assert.deepEqual(read('{"bt":12.5}'), { bt: 12.5, st: -1 });
  });

  it('says when a message is no bench publication, without reading past its end', () => {
    assert.equal(read('{"id":2,"result":{}}'), false);
    assert.equal(read('{"b":1,"t":2}'), false);
    const data = Buffer.from('{"id":1}{"bt":5}');
    assert.equal(readTimes(data, 0, 8, times), false, 'the next message in the buffer is not read');
  });
});

/** `ws`'s own frame reader: exported at run time, though @types/ws does not declare it. */
const { Receiver } = wsModule as unknown as { Receiver: new (options: { isServer: boolean }) => Writable };

describe('textFrame', () => {
  it("builds frames of every length class that ws's own client-side reader accepts", () => {
    const texts = [0, 1, 125, 126, 65_535, 65_536, 300_000].map((n) => 'é'.repeat(n >> 1) + 'x'.repeat(n & 1));
    texts.push('{"a":"ü"}');
    const received: string[] = [];
    const receiver = new Receiver({ isServer: false });
    receiver.on('message', (data: Buffer) => received.push(String(data)));
    receiver.on('error', (error: Error) => assert.fail(error));
    for (const text of texts) receiver.write(textFrame(text));
    assert.deepEqual(received, texts);
  });
});
