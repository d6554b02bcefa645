/**
 * Bad input, frame level: at least 10,000 malformed WebSocket frames, each on its own connection
 * after a real handshake (half of them after a valid `connect`), thrown at a hub in its own
 * process while a publisher and two subscribers go about their business. Every bad connection
 * must end with the close code RFC 6455 / PROTOCOL.md section 5 prescribe, the hub must never
 * exit, its RSS must stay under the stated bound, and the bystanders must get every publication.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { token } from '../support/hub.ts';
import { startChildHub, MiB, mib, type ChildHub } from './support/child-hub.ts';
import { envInt, pool, recordFigures } from './support/figures.ts';
import { frameCases, type FrameCase } from './support/frame-cases.ts';
import { Opcode, RawWs } from './support/raw-ws.ts';
import { Witness } from './support/witness.ts';

/** Peak RSS the hub may reach during the whole run (it idles at about 100 MiB under tsx). */
const RSS_BOUND = 250 * MiB;
const FRAMES = envInt('HERALD_FUZZ_FRAMES', 10_000);
const SEED = envInt('HERALD_FUZZ_SEED', 20_251_121);
const MAX_PAYLOAD = 65_536 + 16_384;
const MAX_FRAGMENTS = 1024;

describe('fuzz: malformed WebSocket frames', () => {
  let hub: ChildHub;
  before(async () => {
    hub = await startChildHub();
  });
  after(() => hub.kill());

  it(`closes each of ${FRAMES} malformed-frame connections with the right code, and nobody else notices`, async (t) => {
    const jwt = await token({ sub: 'fuzzer', channels: ['fuzz:*'], publish: ['fuzz:*'] });
    const witness = await Witness.start(hub);
    const started = Date.now();
    const byCategory = new Map<string, { n: number; wrong: number }>();
    const wrong: string[] = [];
    let deflateOffered = 0;
    try {
      await pool(
        frameCases(SEED, FRAMES, { maxPayload: MAX_PAYLOAD, maxFragments: MAX_FRAGMENTS }),
        48,
        async (c, i) => {
          // Every tenth connection offers compression: the hub must never accept it.
          const offer = i % 10 === 0;
          if (offer) deflateOffered++;
          const code = await runCase(hub.port, c, jwt, offer);
          const stats = byCategory.get(c.category) ?? { n: 0, wrong: 0 };
          stats.n++;
          if (typeof code !== 'number' || !c.expect.includes(code)) {
            stats.wrong++;
            if (wrong.length < 20)
              wrong.push(`#${i} ${c.category} (${c.detail}): got ${code}, want ${c.expect.join('|')}`);
          }
          byCategory.set(c.category, stats);
        },
      );
    } catch (error) {
      witness.abort();
      throw error;
    }
    const seconds = (Date.now() - started) / 1000;
    const report = await witness.finish();
    const { peak } = hub.rss();
    recordFigures(t, 'fuzz-frames', {
      frames: FRAMES,
      seed: SEED,
      seconds,
      framesPerSecond: Math.round(FRAMES / seconds),
      peakRssMiB: Math.round(peak / MiB),
      categories: Object.fromEntries(byCategory),
      deflateOffered,
      witness: report,
    });
    assert.equal(hub.exitStatus, undefined, `the hub exited: ${hub.stderr()}`);
    assert.deepEqual(wrong, [], 'wrong close codes');
    assert.ok(peak < RSS_BOUND, `peak RSS ${mib(peak)} is over the bound ${mib(RSS_BOUND)}`);
    assert.ok(report.acked > 50, 'the witness publisher kept publishing');
  });
});

async function runCase(port: number, c: FrameCase, jwt: string, offerDeflate: boolean): Promise<number | string> {
  let ws: RawWs;
  try {
    ws = await RawWs.open(port, {
      headers: offerDeflate ? { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } : {},
    });
  } catch (error) {
    return `handshake failed: ${(error as Error).message}`;
  }
  if (/^sec-websocket-extensions:/im.test(ws.handshake)) {
    ws.destroy();
    return 'the hub negotiated an extension';
  }
  if (c.connected) {
    ws.command(1, 'connect', { token: jwt });
    try {
      await ws.waitFor((f) => f.opcode === Opcode.Text, 15_000);
    } catch {
      ws.destroy();
      return 'no answer to connect';
    }
  }
  for (const chunk of c.chunks) ws.write(chunk);
  const code = await ws.closeCodeOf(20_000);
  return code ?? 'no close frame';
}
