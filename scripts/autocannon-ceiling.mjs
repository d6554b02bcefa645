#!/usr/bin/env node
/**
 * How many requests autocannon itself can send on this machine: the bench's load (50 connections,
 * `POST /api/publish` with a bearer token and a bench publication as the body) against a
 * `node:http` server in a child process that reads the body and answers `{}`, nothing else.
 *
 *   node scripts/autocannon-ceiling.mjs [rounds=3] [seconds=8]
 *
 * Why: the autocannon target (10,000 publications/s with 100 subscribers, docs/benchmarks.md) is
 * only a statement about the hub if the load tool and the machine can go well past it. It prints
 * requests per second and the p99 latency per round. Loopback only; bounded by rounds × seconds.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

const [rounds, seconds] = [2, 3].map((i, n) => Number(process.argv[i] ?? [3, 8][n]));

if (process.argv[4] === 'server') {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': 2 });
      res.end('{}');
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.(server.address().port));
} else {
  const { default: autocannon } = await import('autocannon');
  const child = fork(fileURLToPath(import.meta.url), [String(rounds), String(seconds), 'server']);
  const port = await new Promise((resolve) => child.once('message', resolve));
  try {
    for (let round = 1; round <= rounds; round++) {
      const result = await autocannon({
        url: `http://127.0.0.1:${port}/api/publish`,
        method: 'POST',
        connections: 50,
        duration: seconds,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${'k'.repeat(32)}` },
        body: JSON.stringify({ channel: 'bench', data: { n: round, pad: 'x'.repeat(60) } }),
      });
      const rate = Math.round(result.requests.average).toLocaleString('en-US');
      console.log(`round ${round}: ${rate} requests/s (${result['2xx']} answered 2xx), p99 ${result.latency.p99} ms`);
    }
  } finally {
    child.kill();
  }
}
