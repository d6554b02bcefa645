/**
 * Reading a request body (http/body.ts) on a real node:http server: whole bodies in one chunk or
 * many, the byte limit with and without Content-Length, and a client that leaves mid-body or a
 * body read twice, which must settle instead of waiting forever.
 */
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { after, test } from 'node:test';
import { HeraldError } from '@herald/protocol';
import { readBodyBytes } from '../src/http/body.ts';

type Reader = (req: IncomingMessage) => Promise<unknown>;
let reader: Reader = () => Promise.resolve();
const outcomes: Array<Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }>> = [];
const server = createServer((req, res) => {
  const outcome = reader(req).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  outcomes.push(outcome);
  void outcome.then(() => res.end('done'));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
after(() => server.close());

function post(body: string | string[], headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    for (const part of Array.isArray(body) ? body : [body]) req.write(part);
    req.end();
  });
}

test('a body in one chunk or many comes back whole', async () => {
  reader = (req) => readBodyBytes(req, 1000).then((b) => b.toString());
  await post('{"a":1}');
  await post(['{"a"', ':', '2}']);
  const [one, many] = await Promise.all(outcomes.splice(0));
  assert.deepEqual(one, { ok: true, value: '{"a":1}' });
  assert.deepEqual(many, { ok: true, value: '{"a":2}' });
});

test('past the limit: refused on Content-Length, and counted when the body is chunked', async () => {
  reader = (req) => readBodyBytes(req, 10);
  await post('x'.repeat(20), { 'content-length': '20' });
  await post(['x'.repeat(6), 'x'.repeat(6)]); // no Content-Length: chunked
  for (const outcome of await Promise.all(outcomes.splice(0))) {
    assert.equal(outcome.ok, false);
    assert.ok(!outcome.ok && outcome.error instanceof HeraldError && outcome.error.code === 'too_large');
  }
});

test('a client that leaves mid-body: the read fails instead of waiting forever', { timeout: 5000 }, async () => {
  reader = (req) => readBodyBytes(req, 1000);
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
  while (outcomes.length === 0) await new Promise((r) => setTimeout(r, 10));
  socket.destroy();
  const outcome = await (outcomes.shift() as Promise<{ ok: boolean }>);
  assert.equal(outcome.ok, false);
});

test('a body read twice: the second read settles, empty', { timeout: 5000 }, async () => {
  reader = async (req) => {
    const first = await readBodyBytes(req, 1000);
    const second = await readBodyBytes(req, 1000);
    return [first.toString(), second.length];
  };
  await post('hello');
  assert.deepEqual(await outcomes.shift(), { ok: true, value: ['hello', 0] });
});
