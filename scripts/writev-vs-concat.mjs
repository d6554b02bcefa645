#!/usr/bin/env node
/**
 * What a turn's batch costs per socket when it leaves as a corked `writev` of one chunk per frame
 * (how turn-batch.ts sends it today) against one write of the frames concatenated, alternating in
 * one process over the same loopback sockets, read by a child process.
 *
 *   node scripts/writev-vs-concat.mjs [sockets=100] [frames per batch=50] [rounds=200]
 *
 * It prints the writing process's CPU per round and per socket, median over rounds. The frames are
 * the hub's own encoding of a bench publication (~150 bytes; needs `npm run build`). Why it
 * matters: under autocannon the hub spends 40 % of its time in `writev` (docs/benchmarks.md), each
 * turn's publications written to each subscriber as that many chunks, and every subscriber of a
 * channel gets the same frames. A micro-benchmark on raw TCP sockets, not a path users publish on.
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { setImmediate } from 'node:timers';

const [sockets, frames, rounds] = [2, 3, 4].map((i, n) => Number(process.argv[i] ?? [100, 50, 200][n]));
if (process.argv[5] === 'reader') await reader(Number(process.argv[6]));
else await writer();

/** Opens the sockets; on each `want`, answers once that many bytes came in over all of them. */
async function reader(port) {
  let total = 0;
  let open = 0;
  for (let i = 0; i < sockets; i++) {
    const socket = net.connect(port, '127.0.0.1', () => ++open === sockets && process.send('open'));
    socket.on('data', (chunk) => (total += chunk.length));
  }
  process.on('message', ({ want }) => {
    const check = () => (total >= want ? process.send('read') : setImmediate(check));
    check();
  });
}

async function writer() {
  const accepted = [];
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    accepted.push(socket);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const args = [String(sockets), String(frames), String(rounds), 'reader', String(server.address().port)];
  const child = fork(new URL(import.meta.url), args);
  const answer = () => new Promise((resolve) => child.once('message', resolve));
  await answer();
  while (accepted.length < sockets) await new Promise((resolve) => setTimeout(resolve, 10));

  // Publication frames as the hub encodes them (its codec, the bench's frame writer).
  const { publicationJson, pubPushJson } = await import('@herald/protocol');
  const { textFrame } = await import('../apps/bench/dist/ws-frame.js');
  const dataJson = JSON.stringify({ bt: 0, pad: 'x'.repeat(60) });
  const batch = Array.from({ length: frames }, (_, i) =>
    textFrame(
      pubPushJson(publicationJson({ channel: 'bench', offset: 1000 + i, epoch: 'abcdefgh', dataJson, ts: Date.now() })),
    ),
  );
  const bytes = batch.reduce((sum, frame) => sum + frame.length, 0);
  let sent = 0;
  const cpu = { writev: [], concat: [] };
  for (let round = 0; round < rounds; round++) {
    for (const mode of round % 2 === 0 ? ['concat', 'writev'] : ['writev', 'concat']) {
      const start = process.cpuUsage();
      if (mode === 'writev') {
        for (const socket of accepted) {
          socket.cork();
          for (const frame of batch) socket.write(frame);
        }
        for (const socket of accepted) socket.uncork();
      } else {
        const one = Buffer.concat(batch);
        for (const socket of accepted) socket.write(one);
      }
      const used = process.cpuUsage(start);
      cpu[mode].push(used.user + used.system);
      sent += sockets * bytes;
      child.send({ want: sent });
      await answer();
    }
  }
  const median = (values) => values.sort((a, b) => a - b)[values.length >> 1];
  const w = median(cpu.writev);
  const c = median(cpu.concat);
  console.log(
    `${sockets} sockets, ${frames} frames a batch: writev ${w} µs a round (${(w / sockets).toFixed(1)} a socket), ` +
      `one buffer ${c} µs (${(c / sockets).toFixed(1)} a socket), ×${(w / c).toFixed(2)}`,
  );
  child.kill();
  for (const socket of accepted) socket.destroy();
  server.close();
}
