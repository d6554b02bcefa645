/**
 * Compression and `ws` limits. permessage-deflate is off, so decompression bombs have nothing to
 * inflate: the handshake must never negotiate it, whatever a client offers, and a compressed
 * (RSV1) frame must be refused without being inflated. The limits the hub gives `ws` are explicit
 * (message size, fragments) and hold exactly at their edges, and every installed copy of `ws` has
 * the DoS fixes (CVE-2024-37890: a request with too many headers crashed the server; fixed in 8.17.1).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import WebSocket from 'ws';
import { startHub, token, type TestHub } from '../support/hub.ts';
import { recordFigures } from './support/figures.ts';
import { Opcode, RawWs, frame, textFrame, startsWithText } from './support/raw-ws.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAX_MESSAGE_BYTES = 65_536;
const MAX_PAYLOAD = MAX_MESSAGE_BYTES + 16 * 1024;
const MAX_FRAGMENTS = 1024;

/** Every installed copy of `ws`: hoisted, scoped or nested in another package's node_modules. */
function installedWs(nodeModules: string, found: string[] = []): string[] {
  const packages = (dir: string): string[] => {
    try {
      return readdirSync(dir)
        .filter((n) => !n.startsWith('.'))
        .map((n) => join(dir, n));
    } catch {
      return [];
    }
  };
  for (const entry of packages(nodeModules)) {
    for (const pkg of entry.split('/').pop()?.startsWith('@') === true ? packages(entry) : [entry]) {
      if (pkg === join(nodeModules, 'ws') && existsSync(join(pkg, 'package.json')))
        found.push(realpathSync(join(pkg, 'package.json')));
      if (existsSync(join(pkg, 'node_modules'))) installedWs(join(pkg, 'node_modules'), found);
    }
  }
  return found;
}

function atLeast(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

/** A command frame padded to exactly `size` bytes of JSON text. */
function paddedCommand(id: number, size: number): string {
  const empty = JSON.stringify({ id, method: 'ping', params: { pad: '' } });
  return JSON.stringify({ id, method: 'ping', params: { pad: 'x'.repeat(size - empty.length) } });
}

describe('compression and ws limits', () => {
  let hub: TestHub;
  let jwt: string;
  before(async () => {
    hub = await startHub({ maxMessageBytes: MAX_MESSAGE_BYTES });
    jwt = await token();
  });
  after(() => hub.close());

  it('every installed ws is at least 8.17.1 (CVE-2024-37890)', (t) => {
    const copies = [
      ROOT,
      ...['packages', 'apps'].flatMap((d) => readdirSync(join(ROOT, d)).map((n) => join(ROOT, d, n))),
    ]
      .flatMap((dir) => installedWs(join(dir, 'node_modules')))
      .filter((path, i, all) => all.indexOf(path) === i);
    assert.ok(copies.length >= 1, 'ws is installed');
    const versions = copies.map((p) => ({
      path: p.slice(ROOT.length),
      version: JSON.parse(readFileSync(p, 'utf8')).version as string,
    }));
    for (const { path, version } of versions) assert.ok(atLeast(version, '8.17.1'), `${path} is ${version}`);
    recordFigures(t, 'ws-version', { copies: versions });
  });

  it('never negotiates permessage-deflate, whatever the client offers', async () => {
    for (const offer of [
      'permessage-deflate',
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
      'permessage-deflate; server_max_window_bits=8, permessage-deflate',
      'x-webkit-deflate-frame',
    ]) {
      const ws = await RawWs.open(hub.port, { headers: { 'Sec-WebSocket-Extensions': offer } });
      assert.doesNotMatch(ws.handshake, /sec-websocket-extensions/i, offer);
      ws.destroy();
    }
    // The real `ws` client offers it by default with perMessageDeflate: true; the hub declines.
    const client = new WebSocket(hub.wsUrl, { perMessageDeflate: true });
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    assert.equal(client.extensions, '');
    client.close();
  });

  it('refuses a compressed (RSV1) frame holding a 64 MiB deflate bomb with 1002, without inflating it', async (t) => {
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024, 0x20), { level: 9 });
    const ws = await RawWs.open(hub.port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    ws.command(1, 'connect', { token: jwt });
    await ws.waitFor((f) => f.opcode === Opcode.Text);
    const before = process.memoryUsage().rss;
    // One frame, under maxPayload: only the missing extension stops it from being inflated.
    ws.write(frame({ opcode: Opcode.Text, payload: bomb, rsv: 0b100 }));
    assert.equal(await ws.closeCodeOf(), 1002);
    const grew = process.memoryUsage().rss - before;
    recordFigures(t, 'deflate-bomb', {
      compressedBytes: bomb.length,
      inflatedWouldBe: 64 * 1024 * 1024,
      rssGrowthMiB: +(grew / 1048576).toFixed(1),
    });
    assert.ok(grew < 32 * 1024 * 1024, `RSS grew ${grew} bytes: the bomb must not be inflated`);
  });

  it(`takes a message of exactly maxPayload (${MAX_PAYLOAD} bytes) and closes 1009 one byte above`, async () => {
    const ok = await RawWs.open(hub.port);
    ok.command(1, 'connect', { token: jwt });
    ok.write(textFrame(paddedCommand(2, MAX_PAYLOAD)));
    const reply = await ok.waitFor((f) => f.opcode === Opcode.Text && startsWithText(f.payload, '{"id":2'));
    assert.equal(JSON.parse(reply.payload.toString()).result !== undefined, true);
    ok.destroy();

    const big = await RawWs.open(hub.port);
    big.command(1, 'connect', { token: jwt });
    big.write(textFrame(paddedCommand(2, MAX_PAYLOAD + 1)));
    assert.equal(await big.closeCodeOf(), 1009);
  });

  it('reassembles fragmented messages, counts fragments against maxPayload, and caps their number', async () => {
    const text = paddedCommand(2, 3000);
    const fragments = (n: number, payload: string): Buffer[] => {
      const size = Math.ceil(payload.length / n);
      return Array.from({ length: n }, (_, i) =>
        frame({
          opcode: i === 0 ? Opcode.Text : Opcode.Continuation,
          payload: payload.slice(i * size, (i + 1) * size),
          fin: i === n - 1,
        }),
      );
    };
    // 3 fragments with a ping between them (control frames may interleave): answered.
    const a = await RawWs.open(hub.port);
    a.command(1, 'connect', { token: jwt });
    const [f1, f2, f3] = fragments(3, text) as [Buffer, Buffer, Buffer];
    a.write(Buffer.concat([f1, frame({ opcode: Opcode.Ping, payload: 'hi' }), f2, f3]));
    await a.waitFor((f) => f.opcode === Opcode.Text && startsWithText(f.payload, '{"id":2'));
    await a.waitFor((f) => f.opcode === Opcode.Pong && f.payload.toString() === 'hi');
    a.destroy();

    // Exactly the fragment cap: answered. One more: 1008.
    const b = await RawWs.open(hub.port);
    b.command(1, 'connect', { token: jwt });
    b.write(Buffer.concat(fragments(MAX_FRAGMENTS, paddedCommand(2, 4 * MAX_FRAGMENTS))));
    await b.waitFor((f) => f.opcode === Opcode.Text && startsWithText(f.payload, '{"id":2'));
    b.destroy();
    const c = await RawWs.open(hub.port);
    c.command(1, 'connect', { token: jwt });
    c.write(Buffer.concat(fragments(MAX_FRAGMENTS + 1, paddedCommand(2, 4 * (MAX_FRAGMENTS + 1)))));
    assert.equal(await c.closeCodeOf(), 1008);

    // Fragments that each fit but add up past maxPayload: 1009.
    const d = await RawWs.open(hub.port);
    d.command(1, 'connect', { token: jwt });
    d.write(Buffer.concat(fragments(4, paddedCommand(2, MAX_PAYLOAD + 100))));
    assert.equal(await d.closeCodeOf(), 1009);
  });
});
