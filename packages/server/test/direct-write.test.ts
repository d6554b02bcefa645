/**
 * The fan-out's direct socket write (transports/direct-write.ts), on real loopback sockets: bytes
 * keep their order mixed with node's own writes (corked, queued, plain), what the kernel could not
 * take is counted until it is written and then announced by 'drain', and a write to a socket the
 * client reset destroys it with the error instead of throwing. Every test runs twice: by the native
 * write to the descriptor (native/herald-write.c, built by `npm run build`; CI demands it with
 * HERALD_REQUIRE_NATIVE=1) and by the socket's handle (HERALD_NATIVE_WRITES=0).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  directWritesOn,
  GATHER_MAX,
  gatherWrites,
  gatherWritesOn,
  nativeWritesOn,
  pendingBytes,
  setDirectWrites,
  setGatherWrites,
  setNativeWrites,
  settleGathered,
  writeDirect,
} from '../src/transports/direct-write.ts';

let server: Server;
/** Its sockets never read: a reset is seen by a write, not by a read. */
let deaf: Server;
const accepted: Socket[] = [];

before(async () => {
  assert.equal(setDirectWrites(true), true, 'the stream_wrap binding is available');
  server = createServer((socket) => accepted.push(socket));
  deaf = createServer({ pauseOnConnect: true }, (socket) => accepted.push(socket));
  for (const s of [server, deaf]) {
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
  }
});
after(() => {
  server.close();
  deaf.close();
});

/** A connected pair: `hub` is the server's side (written to), `client` reads. One at a time (not concurrently). */
async function pair(on = server): Promise<{ hub: Socket; client: Socket }> {
  const count = accepted.length;
  const client = connect((on.address() as { port: number }).port, '127.0.0.1');
  await once(client, 'connect');
  while (accepted.length === count) await new Promise((r) => setImmediate(r));
  return { hub: accepted[accepted.length - 1]!, client };
}

/** A chunk of `size` bytes that says its number in every byte (mod 251). */
const chunk = (n: number, size: number): Buffer => Buffer.alloc(size, n % 251);

/** What a fresh process with `env` says of `directWritesOn()` and `nativeWritesOn()` (or `what`). */
function probe(env: Record<string, string>, what = 'm.directWritesOn(), m.nativeWritesOn()'): string {
  return spawnSync(
    process.execPath,
    [
      '--conditions=herald-source',
      '--import',
      'tsx',
      '-e',
      `import('./packages/server/src/transports/direct-write.ts').then((m) => console.log(${what}))`,
    ],
    {
      env: { ...process.env, HERALD_DIRECT_WRITES: '', HERALD_NATIVE_WRITES: '', HERALD_GATHER_WRITES: '', ...env },
      encoding: 'utf8',
    },
  ).stdout.trim();
}

/** Whether the native write was built here: CI demands it, a machine with no C compiler may lack it. */
const nativeBuilt = setNativeWrites(true);

describe('direct socket writes: the switches', () => {
  it('are on by default (the binding is there), off with HERALD_DIRECT_WRITES=0', () => {
    assert.match(probe({}), /^true /);
    assert.equal(probe({ HERALD_DIRECT_WRITES: '0' }), 'false false');
    // On for this file whatever the environment says: the tests below exercise the direct path.
    assert.equal(directWritesOn(), true);
  });

  it('go by the native write when it is built, to the handle with HERALD_NATIVE_WRITES=0', (t) => {
    if (process.env['HERALD_REQUIRE_NATIVE'] === '1') assert.ok(nativeBuilt, 'npm run build compiled the native write');
    else if (!nativeBuilt) return t.skip('the native write is not built here (npm run build, a C compiler)');
    assert.equal(probe({}), 'true true');
    assert.equal(probe({ HERALD_NATIVE_WRITES: '0' }), 'true false');
  });

  it("gather a fan-out's native writes unless HERALD_GATHER_WRITES=0 or the native write is off", (t) => {
    if (!nativeBuilt) return t.skip('the native write is not built here');
    assert.equal(probe({}, 'm.gatherWritesOn()'), 'true');
    assert.equal(probe({ HERALD_GATHER_WRITES: '0' }, 'm.gatherWritesOn()'), 'false');
    assert.equal(probe({ HERALD_NATIVE_WRITES: '0' }, 'm.gatherWritesOn()'), 'false');
  });
});

for (const mode of ['gathered', 'native', 'handle'] as const) {
  const native = mode !== 'handle';
  const skip = native && !nativeBuilt ? 'the native write is not built here' : false;
  const ways = { gathered: 'gathered in a fan-out', native: 'by the native write', handle: 'to the handle' };
  /** One write, alone in a fan-out when the mode gathers: the gather leaves as it ends. */
  const write = (socket: Socket, data: Buffer): void =>
    mode === 'gathered' ? gatherWrites(() => writeDirect(socket, data)) : writeDirect(socket, data);
  describe(`direct socket writes ${ways[mode]}`, { skip }, () => {
    before(() => {
      setNativeWrites(native);
      assert.equal(nativeWritesOn(), native);
      if (native) assert.equal(setGatherWrites(mode === 'gathered'), mode === 'gathered');
    });

    it(
      'keep their order among corked, queued and plain writes, through a client that stops reading',
      { timeout: 10_000 },
      async () => {
        const { hub, client } = await pair();
        client.pause();
        const expected: Buffer[] = [];
        let sawPending = false;
        // 64 KiB chunks, 8 MiB in all: far past what loopback buffers, so direct writes turn
        // asynchronous and node's own writes queue behind them.
        for (let n = 0; n < 128; n++) {
          const data = chunk(n, 65_536);
          expected.push(data);
          if (n % 4 === 1) hub.write(data);
          else if (n % 4 === 2) {
            hub.cork();
            write(hub, data); // corked: this one goes through the Writable
            hub.uncork();
          } else write(hub, data);
          sawPending ||= pendingBytes(hub) > 0;
        }
        assert.ok(sawPending, 'some direct writes were left to libuv');
        const received: Buffer[] = [];
        let bytes = 0;
        const total = 128 * 65_536;
        const done = new Promise<void>((resolve) =>
          client.on('data', (data: Buffer) => {
            received.push(data);
            bytes += data.length;
            if (bytes >= total) resolve();
          }),
        );
        const drained = once(hub, 'drain');
        client.resume();
        await done;
        await drained;
        assert.equal(pendingBytes(hub), 0);
        assert.ok(Buffer.concat(received).equals(Buffer.concat(expected)), 'the bytes arrived in the order written');
        hub.destroy();
        client.destroy();
      },
    );

    it('count what libuv holds until the client reads it, then emit drain', { timeout: 10_000 }, async () => {
      const { hub, client } = await pair();
      client.pause();
      let n = 0;
      while (pendingBytes(hub) === 0 && n < 1024) write(hub, chunk(n++, 65_536));
      assert.ok(pendingBytes(hub) > 0, 'the kernel stopped taking writes');
      assert.equal(hub.writableLength, 0, 'none of it is in the Writable');
      const held = pendingBytes(hub);
      write(hub, chunk(n++, 1000));
      assert.equal(pendingBytes(hub), held + 1000);
      const drained = once(hub, 'drain');
      client.resume();
      await drained;
      assert.equal(pendingBytes(hub), 0);
      hub.destroy();
      client.destroy();
    });

    it('destroy the socket with the error when the client reset the connection', { timeout: 10_000 }, async () => {
      const { hub, client } = await pair(deaf);
      const errored = once(hub, 'error');
      client.resetAndDestroy();
      await new Promise((r) => setTimeout(r, 50));
      // The first writes after a reset may still be taken; one of these fails.
      for (let i = 0; i < 100 && !hub.destroyed; i++) {
        write(hub, chunk(i, 1024));
        await new Promise((r) => setTimeout(r, 5));
      }
      const [error] = (await errored) as [NodeJS.ErrnoException];
      assert.ok(['EPIPE', 'ECONNRESET'].includes(error.code ?? ''), `code ${error.code}`);
      assert.equal(error.syscall, 'write');
      assert.ok(hub.destroyed);
    });
  });
}

/** Reads `client` until it got `bytes` bytes or closed; what it got. */
async function readAll(client: Socket, bytes: number): Promise<Buffer> {
  const received: Buffer[] = [];
  let got = 0;
  await new Promise<void>((resolve) => {
    client.on('data', (data: Buffer) => {
      received.push(data);
      got += data.length;
      if (got >= bytes) resolve();
    });
    client.on('close', () => resolve());
  });
  return Buffer.concat(received);
}

describe(
  "gathered writes (a fan-out's native writes in one call)",
  { skip: !nativeBuilt && 'the native write is not built here' },
  () => {
    before(() => {
      setNativeWrites(true);
      assert.equal(setGatherWrites(true), true);
      assert.equal(gatherWritesOn(), true);
    });

    it("leave when the fan-out ends, each socket's in the order it was written", { timeout: 10_000 }, async () => {
      const pairs = [await pair(), await pair(), await pair()];
      const [a, b, c] = pairs;
      const late = chunk(9, 300);
      gatherWrites(() => {
        writeDirect(a!.hub, chunk(1, 100));
        writeDirect(b!.hub, chunk(1, 100));
        writeDirect(c!.hub, chunk(1, 100));
        // A write by other means comes after the writer settles the gather.
        settleGathered(b!.hub);
        b!.hub.write(chunk(3, 50));
        writeDirect(a!.hub, chunk(2, 200));
        // Nested: the inner end leaves the gather to the outer one.
        gatherWrites(() => writeDirect(c!.hub, chunk(4, 10)));
      });
      writeDirect(c!.hub, late);
      const [gotA, gotB, gotC] = await Promise.all([
        readAll(a!.client, 300),
        readAll(b!.client, 150),
        readAll(c!.client, 410),
      ]);
      assert.ok(gotA.equals(Buffer.concat([chunk(1, 100), chunk(2, 200)])));
      assert.ok(gotB.equals(Buffer.concat([chunk(1, 100), chunk(3, 50)])));
      assert.ok(gotC.equals(Buffer.concat([chunk(1, 100), chunk(4, 10), late])));
      for (const p of pairs) {
        p.hub.destroy();
        p.client.destroy();
      }
    });

    it('go out in several calls past GATHER_MAX writes or eight distinct chunks', { timeout: 20_000 }, async () => {
      const pairs: { hub: Socket; client: Socket }[] = [];
      for (let i = 0; i < GATHER_MAX + 20; i++) pairs.push(await pair());
      // Twelve different frames among them: the gather holds at most eight at a time.
      gatherWrites(() => pairs.forEach((p, i) => writeDirect(p.hub, chunk(i % 12, 64 + (i % 12)))));
      const got = await Promise.all(pairs.map((p, i) => readAll(p.client, 64 + (i % 12))));
      got.forEach((data, i) => assert.ok(data.equals(chunk(i % 12, 64 + (i % 12))), `socket ${i} got its frame`));
      for (const p of pairs) {
        p.hub.destroy();
        p.client.destroy();
      }
    });

    it('skip a socket destroyed after its write was gathered, and write the others', { timeout: 10_000 }, async () => {
      const [gone, kept] = [await pair(), await pair()];
      gatherWrites(() => {
        writeDirect(gone!.hub, chunk(5, 100));
        writeDirect(kept!.hub, chunk(5, 100));
        gone!.hub.destroy();
      });
      assert.equal((await readAll(gone!.client, 1)).length, 0, "nothing reached the destroyed socket's client");
      assert.ok((await readAll(kept!.client, 100)).equals(chunk(5, 100)));
      kept!.hub.destroy();
      kept!.client.destroy();
    });

    it('hand what the kernel did not take to the handle, counted until written', { timeout: 10_000 }, async () => {
      const { hub, client } = await pair();
      client.pause();
      const big = chunk(6, 8 * 1024 * 1024);
      const after = chunk(7, 1000);
      gatherWrites(() => {
        writeDirect(hub, big);
        // The second write to the socket sends the first: the kernel takes part, the handle the
        // rest, and this one queues behind it instead of going to the descriptor in between.
        writeDirect(hub, after);
      });
      assert.ok(pendingBytes(hub) > 0, 'the kernel took part of 8 MiB');
      const drained = once(hub, 'drain');
      const received = readAll(client, big.length + after.length);
      client.resume();
      assert.ok((await received).equals(Buffer.concat([big, after])));
      await drained;
      assert.equal(pendingBytes(hub), 0);
      hub.destroy();
      client.destroy();
    });
  },
);
