/**
 * Guarantee 5 of PROTOCOL.md section 8: bad input gets a clear error, never crashes the hub and
 * never affects other clients. A WebSocket and an SSE subscriber receive a steady stream of
 * publications through the whole file; the last test checks they got every one, in order.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { api, publish, sleep, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { range } from '../../../test/support/resume.ts';
import { RawSse, streamQuery } from '../../../test/support/sse.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const MAX_MESSAGE_BYTES = 1000;
/** The largest accepted frame: maxMessageBytes plus 16 KiB for the command around the data. */
const MAX_FRAME_BYTES = MAX_MESSAGE_BYTES + 16 * 1024;

/** Sends one raw text to a fresh connection after connect; resolves with the close code and what came back. */
async function sendRaw(
  hub: TestHub,
  frame: string | Buffer,
  options: { binary?: boolean; connect?: boolean } = {},
): Promise<{ code: number; messages: any[] }> {
  const client = new WsTestClient(hub.wsUrl);
  await client.opened;
  if (options.connect !== false) await client.ok('connect', { token: await token() });
  const messages: any[] = [];
  client.socket.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
  client.socket.send(frame, { binary: options.binary ?? false });
  const code = await client.closed;
  return { code, messages };
}

/**
 * Sends raw bytes after a hand-made WebSocket handshake (frames `ws` itself would never send).
 * Resolves with the handshake status and the code of the close frame the hub answered with.
 */
async function rawFrames(hub: TestHub, bytes: Buffer): Promise<{ status: string; closeCode: number | undefined }> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(hub.port, '127.0.0.1', () => {
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
    });
    let text = '';
    let sent = false;
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (!sent && text.includes('\r\n\r\n')) {
        sent = true;
        socket.write(bytes);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
    setTimeout(() => reject(new Error('the hub did not close the connection')), 10_000).unref();
  });
  const head = text.indexOf('\r\n\r\n');
  const frame = Buffer.from(text.slice(head + 4), 'latin1');
  const closeCode = frame[0] === 0x88 && frame.length >= 4 ? frame.readUInt16BE(2) : undefined;
  return { status: text.slice(0, 12), closeCode };
}

/** A masked client frame with the given first byte (FIN, opcode) and payload. */
function clientFrame(firstByte: number, payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([firstByte, 0x80 | payload.length]), mask, masked]);
}

describe('guarantee 5: bad input', () => {
  let hub: TestHub;
  let watcher: WsTestClient;
  let sse: RawSse;
  let published = 0;
  let publishing = true;
  let flow: Promise<void>;
  const channel = 'bad:flow';

  before(async () => {
    hub = await startHub({ maxMessageBytes: MAX_MESSAGE_BYTES });
    const alice = await token();
    watcher = await WsTestClient.connect(hub.wsUrl, alice);
    await watcher.ok('subscribe', { channel });
    sse = await RawSse.open(`${hub.url}/sse?${streamQuery([channel], { token: alice })}`);
    await until(() => sse.events.length >= 1, 'herald.connected');
    // Publications keep flowing to the healthy clients while the bad input below is answered.
    flow = (async () => {
      while (publishing && published < 5000) {
        await publish(hub, channel, published + 1);
        published++;
        await sleep(5);
      }
    })();
  });
  after(async () => {
    publishing = false;
    await flow;
    watcher.close();
    sse.close();
    await hub.close();
  });

  it('closes 4002 after a disconnect push for frames that are not JSON commands', async () => {
    for (const frame of ['{not json', '', '[]', 'null', '42', '{"method":"ping"}', '{"id":0,"method":"ping"}']) {
      const { code, messages } = await sendRaw(hub, frame);
      assert.equal(code, 4002, frame);
      assert.equal(messages.length, 1, frame);
      assert.equal(messages[0].push, 'disconnect');
      assert.equal(messages[0].code, 4002);
      assert.equal(messages[0].reconnect, false);
      assert.ok(messages[0].reason.length > 0);
    }
  });

  it('closes 4002 for unknown methods and for binary frames', async () => {
    const unknown = await sendRaw(hub, '{"id":5,"method":"launch","params":{}}');
    assert.equal(unknown.code, 4002);
    assert.match(unknown.messages[0].reason, /unknown method/);
    const binary = await sendRaw(hub, Buffer.from('{"id":5,"method":"ping"}'), { binary: true });
    assert.equal(binary.code, 4002);
    assert.equal(binary.messages[0].push, 'disconnect');
    const beforeConnect = await sendRaw(hub, '{"id":1,"method":"launch"}', { connect: false });
    assert.equal(beforeConnect.code, 4002);
  });

  it('answers bad params and bad channel names with an error for that id, and keeps the connection', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    client.socket.send('{"id":50,"method":"subscribe","params":[1]}');
    await until(() => client.replies.has(50), 'the answer to id 50');
    assert.equal(client.replies.get(50)?.error?.code, 'bad_request');
    for (const name of ['', 'a b', 'x'.repeat(201), 'ä', 'a,b', 'a~b', 42, null, { a: 1 }]) {
      for (const method of ['subscribe', 'publish', 'history', 'presence', 'unsubscribe']) {
        const reply = await client.call(method, { channel: name, data: 1 });
        assert.ok(
          reply.error?.code === 'bad_channel' || reply.error?.code === 'forbidden',
          `${method} ${JSON.stringify(name)}: ${JSON.stringify(reply)}`,
        );
      }
    }
    assert.deepEqual(await client.ok('ping'), {});
    client.close();
  });

  it('answers data over maxMessageBytes with too_large and keeps the connection', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    const reply = await client.call('publish', { channel: 'bad:big', data: 'x'.repeat(MAX_MESSAGE_BYTES) });
    assert.equal(reply.error?.code, 'too_large');
    const fits = await client.call('publish', { channel: 'bad:big', data: 'x'.repeat(MAX_MESSAGE_BYTES - 2) });
    assert.equal(fits.result?.offset, 1);
    assert.deepEqual(await client.ok('ping'), {});
    client.close();
  });

  it('closes 1009, without a disconnect push, for a frame over maxMessageBytes + 16 KiB', async () => {
    const client = await WsTestClient.connect(hub.wsUrl, await token());
    const frame = JSON.stringify({ id: 9, method: 'publish', params: { channel: 'bad:big', data: 'y' } });
    const padding = ' '.repeat(MAX_FRAME_BYTES + 1 - Buffer.byteLength(frame));
    const messages: any[] = [];
    client.socket.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
    client.socket.send(frame.slice(0, -1) + padding + '}');
    assert.equal(await client.closed, 1009);
    assert.deepEqual(messages, []);
    // A frame of exactly the limit is accepted.
    const ok = await WsTestClient.connect(hub.wsUrl, await token());
    const exact = JSON.stringify({ id: 2, method: 'ping', params: {} });
    ok.socket.send(exact.slice(0, -1) + ' '.repeat(MAX_FRAME_BYTES - Buffer.byteLength(exact)) + '}');
    await until(() => ok.replies.has(2), 'the answer to the largest frame');
    assert.deepEqual(ok.replies.get(2)?.result, {});
    ok.close();
  });

  it('survives frames that break the WebSocket framing itself', async () => {
    // Closed by the hub with the RFC 6455 codes: 1007 invalid UTF-8, 1002 protocol error.
    assert.deepEqual(await rawFrames(hub, clientFrame(0x81, Buffer.from([0xc3, 0x28]))), {
      status: 'HTTP/1.1 101',
      closeCode: 1007,
    });
    assert.deepEqual(await rawFrames(hub, clientFrame(0x83, Buffer.from('x'))), {
      status: 'HTTP/1.1 101',
      closeCode: 1002,
    });
    assert.deepEqual(await rawFrames(hub, Buffer.from([0x81, 0x02, 0x7b, 0x7d])), {
      status: 'HTTP/1.1 101',
      closeCode: 1002,
    });
    assert.deepEqual(await rawFrames(hub, Buffer.from('GET / HTTP/1.1\r\n\r\n')), {
      status: 'HTTP/1.1 101',
      closeCode: 1002,
    });
  });

  it('answers malformed HTTP with 400 and bad upgrade requests without a handshake', async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(hub.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(text));
    });
    assert.match(answer, /^HTTP\/1\.1 400/);
    const wrongPath = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${hub.port}/nowhere`);
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('error', () => undefined);
    });
    assert.equal(wrongPath, 404);
    const notUpgraded = await api(hub, 'GET', '/ws');
    assert.equal(notUpgraded.status, 400);
    assert.equal(notUpgraded.body.error.code, 'bad_request');
  });

  it('refuses bad tokens cleanly (the full matrix is in auth.test.ts)', async () => {
    const algNone = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.`;
    const forged = await token({ secret: 'forged-secret-0123456789abcdef0123456789' });
    for (const bad of [algNone, forged, await token({ expiresIn: -1 }), 'x.y.z', '']) {
      const ws = new WsTestClient(hub.wsUrl);
      await ws.opened;
      ws.socket.send(JSON.stringify({ id: 1, method: 'connect', params: { token: bad } }));
      assert.equal(await ws.closed, 4001);
      const sse = await RawSse.open(`${hub.url}/sse?${streamQuery([channel], { token: bad || 'empty' })}`);
      assert.equal(sse.status, 401);
    }
  });

  it('never lets any of it reach the other clients: they received every publication, in order', async () => {
    const target = published + 3;
    await until(() => published >= target, 'a few more publications');
    publishing = false;
    await flow;
    await until(
      () => watcher.publications(channel).length === published && sse.publications().length === published,
      'the healthy clients to catch up',
      10_000,
    );
    assert.ok(published > 10);
    assert.deepEqual(
      watcher.publications(channel).map((p) => p.offset),
      range(1, published),
    );
    assert.deepEqual(
      sse.publications().map((p) => p.offset),
      range(1, published),
    );
    assert.equal(watcher.closeCode, undefined);
    assert.equal((await api(hub, 'GET', '/healthz')).status, 200);
    assert.deepEqual(await watcher.ok('ping'), {});
  });
});
