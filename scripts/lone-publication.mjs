#!/usr/bin/env node
/**
 * What a lone publication costs the hub per subscriber, against a bare write loop over the very
 * same sockets, in one process, alternating: no second server, no cross-run noise.
 *
 *   node scripts/lone-publication.mjs [subscribers=10000] [rounds=20]
 *
 * A `HeraldServer` (memory broker, no keep-alive pings in the run) takes `subscribers` WebSocket
 * clients from two child processes (the bench's frame reader). Each round publishes once through
 * `hub.publish` (the fan-out as after `POST /api/publish`'s parsing) with the hub's direct socket
 * writes on (the default, transports/direct-write.ts: by the native write when it is built,
 * the fan-out's writes gathered into one call per few hundred), once with one native write per
 * socket (`HERALD_GATHER_WRITES=0`), once with direct writes to the handle only (`HERALD_NATIVE_WRITES=0`), once with them off
 * (`HERALD_DIRECT_WRITES=0`: every write a `socket.write`), and
 * once as a bare loop of `socket.write(frame)` over the hub's own sockets with the same bytes,
 * Herald's encoding (what the raw ws reference does), in a rotating order, waiting for every client
 * to read each before the next. It prints the hub's CPU per delivery for each (median over
 * rounds), the ratios to the bare loop, and how long each fan-out loop ran.
 * A best case for both sides (no HTTP, a quiet loop): it isolates what Herald's delivery path
 * adds to the write syscall. Needs `npm run build` and `ulimit -n` above `subscribers` + 100.
 */
import { median, nextMessage as next, startBenchHub } from './bench-subscribers.mjs';

await hub(Number(process.argv[2] ?? 10_000), Number(process.argv[3] ?? 20));

async function hub(subscribers, rounds) {
  const { server, sockets, children } = await startBenchHub(subscribers);
  console.log(`${subscribers} subscribers`);

  const payload = { bt: 0, pad: 'x'.repeat(60) };
  // The bare loop's frame: Herald's own encoding of a publication of the same channel, epoch and
  // data (so the same bytes on the wire), the bench marker inside.
  const { textFrame } = await import('../apps/bench/dist/ws-frame.js');
  const { publicationJson, pubPushJson } = await import('@herald/protocol');
  const { epoch } = await server.hub.publish({ channel: 'bench', data: payload });
  await Promise.all(children.map(next));
  const bareFrame = (offset) =>
    textFrame(
      pubPushJson(
        publicationJson({ channel: 'bench', offset, epoch, dataJson: JSON.stringify(payload), ts: Date.now() }),
      ),
    );
  const { setDirectWrites, setGatherWrites, setNativeWrites } =
    await import('../packages/server/dist/transports/direct-write.js');
  const native = setNativeWrites(true);
  if (!native) console.log('the native write is not built (npm run build): its rows are the handle-only one again');
  const modes = ['herald', 'herald-single', 'herald-handle', 'herald-plain', 'bare'];
  const runs = Object.fromEntries(modes.map((mode) => [mode, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < modes.length; i++) {
      const mode = modes[(round + i) % modes.length];
      const received = Promise.all(children.map(next));
      setDirectWrites(mode === 'herald' || mode === 'herald-single' || mode === 'herald-handle');
      setNativeWrites(mode === 'herald' || mode === 'herald-single');
      setGatherWrites(mode === 'herald');
      const cpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      if (mode !== 'bare') void server.hub.publish({ channel: 'bench', data: payload });
      else {
        const frame = bareFrame(round * 2 + 2);
        for (const socket of sockets) if (!socket.destroyed) socket.write(frame);
      }
      const loopMs = Number(process.hrtime.bigint() - start) / 1e6;
      const inLoop = process.cpuUsage(cpu);
      await received;
      const used = process.cpuUsage(cpu);
      runs[mode].push({
        cpuUs: (used.user + used.system) / subscribers,
        loopCpuUs: (inLoop.user + inLoop.system) / subscribers,
        loopMs,
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const of = (mode, key) => median(runs[mode].map((r) => r[key]));
  const b = of('bare', 'cpuUs');
  const bl = of('bare', 'loopCpuUs');
  for (const [mode, label] of [
    ['herald', `Herald, direct writes on (the default${native ? ', native writes gathered per fan-out' : ''})`],
    ['herald-single', 'Herald, one native write per socket (HERALD_GATHER_WRITES=0)'],
    ['herald-handle', 'Herald, direct writes to the handle (HERALD_NATIVE_WRITES=0)'],
    ['herald-plain', 'Herald, direct writes off'],
  ]) {
    const h = of(mode, 'cpuUs');
    const hl = of(mode, 'loopCpuUs');
    console.log(
      `${label}: CPU per delivery ${h.toFixed(2)} µs, ×${(h / b).toFixed(3)} the bare write loop's ${b.toFixed(2)} µs ` +
        `(in the fan-out loop ${hl.toFixed(2)} µs, ×${(hl / bl).toFixed(3)}); loop ${of(mode, 'loopMs').toFixed(1)} ms`,
    );
  }
  console.log(`bare write loop: ${of('bare', 'loopMs').toFixed(1)} ms (medians of ${rounds})`);
  for (const child of children) child.kill();
  await server.close();
}
