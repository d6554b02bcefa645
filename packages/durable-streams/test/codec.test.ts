/** The pure codecs of Durable Streams: paths and channels, offsets, cursors, headers, payloads, SSE. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidChannel } from '@herald/protocol';
import { responseCursor } from '../src/cursor.ts';
import { DsError } from '../src/errors.ts';
import { appendRequest, createRequest, mediaType } from '../src/headers.ts';
import { channelForPath, pathForChannel, streamPath } from '../src/names.ts';
import { formatOffset, parseOffset, readFrom } from '../src/offsets.ts';
import { concat, dataJson, modeOf, parseBody, payloadOf, prefixOf } from '../src/payload.ts';
import { renderBody, sseControlEvent, sseDataEvent } from '../src/render.ts';

function status(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof DsError) return error.status;
    throw error;
  }
  return undefined;
}

describe('stream paths and channels', () => {
  it('keeps channel characters, escapes every other byte as =HH, one to one', () => {
    const cases = ['v1/stream/a', 'chat/42', 'a b', 'x=y', 'ünï/✓', 'a%b', 'tab~plus+'];
    const channels = cases.map((p) => channelForPath(p));
    assert.equal(channels[0], 'ds:v1/stream/a');
    assert.equal(channels[2], 'ds:a=20b');
    assert.equal(channels[3], 'ds:x=3Dy');
    for (const [i, channel] of channels.entries()) {
      assert.ok(isValidChannel(channel), channel);
      assert.equal(pathForChannel(channel), cases[i]);
    }
    assert.equal(new Set(channels).size, cases.length);
    assert.equal(pathForChannel('orders:1'), undefined);
  });

  it('refuses paths whose channel would pass 200 characters, and odd segments', () => {
    assert.equal(
      status(() => channelForPath('a'.repeat(197))),
      undefined,
    );
    assert.equal(
      status(() => channelForPath('a'.repeat(198))),
      400,
    );
    assert.equal(streamPath('v1/stream/a%20b'), 'v1/stream/a b');
    for (const bad of ['', 'a//b', 'a/', 'a/../b', 'a/./b', 'a%2Fb', 'a%00b', '%zz']) {
      assert.equal(
        status(() => streamPath(bad)),
        400,
        bad,
      );
    }
    assert.equal(
      status(() => streamPath('v1/stream/__ds/subscriptions/x')),
      404,
    );
  });
});

describe('offsets', () => {
  it('are 16 digits, an underscore and 16 zeros, sorting as the positions do', () => {
    assert.equal(formatOffset(0), '0000000000000000_0000000000000000');
    assert.equal(formatOffset(42), '0000000000000042_0000000000000000');
    assert.ok(formatOffset(9) < formatOffset(10));
    assert.equal(parseOffset(formatOffset(123456)), 123456);
    assert.equal(parseOffset('9999999999999999_0000000000000000'), Number.POSITIVE_INFINITY);
    for (const bad of ['', '0', '-2', '0,1', '0 1', '../x', '0000000000000001_0000000000000001', 'now']) {
      assert.equal(
        status(() => parseOffset(bad)),
        400,
        bad,
      );
    }
  });

  it('the offset parameter: once, not empty; -1 and now are sentinels; live reads need it', () => {
    const q = (s: string) => new URLSearchParams(s);
    assert.deepEqual(readFrom(q(''), false), { kind: 'position', position: 0 });
    assert.deepEqual(readFrom(q('offset=-1'), true), { kind: 'position', position: 0 });
    assert.deepEqual(readFrom(q('offset=now'), true), { kind: 'now' });
    assert.equal(
      status(() => readFrom(q(''), true)),
      400,
    );
    assert.equal(
      status(() => readFrom(q('offset='), false)),
      400,
    );
    assert.equal(
      status(() => readFrom(q('offset=a&offset=b'), false)),
      400,
    );
  });
});

describe('Stream-Cursor', () => {
  it('is the 20-second interval since 2024-10-09, and moves past an echoed cursor by 1 to 180 intervals', () => {
    const now = Date.UTC(2024, 9, 9) + 20_000 * 1000 + 5;
    assert.equal(responseCursor(now, null), '1000');
    assert.equal(responseCursor(now, '999'), '1000');
    assert.equal(responseCursor(now, 'junk'), '1000');
    assert.equal(
      responseCursor(now, '1000', () => 0),
      '1001',
    );
    assert.equal(
      responseCursor(now, '1000', () => 0.999999),
      '1180',
    );
    assert.equal(
      responseCursor(now, '5000', () => 0),
      '5001',
    );
  });
});

describe('request headers', () => {
  it('TTL and Expires-At: strict formats, not both', () => {
    assert.deepEqual(createRequest({ 'stream-ttl': '3600' }), { ttl: 3600, closed: false });
    for (const ttl of ['abc', '-1', '00060', '+60', '60.5', '1e3', '']) {
      assert.equal(
        status(() => createRequest({ 'stream-ttl': ttl })),
        400,
        ttl,
      );
    }
    const at = new Date(Date.now() + 60_000).toISOString();
    assert.equal(createRequest({ 'stream-expires-at': at }).expiresAt, Date.parse(at));
    assert.equal(createRequest({ 'stream-expires-at': at.replace('Z', '+00:00') }).expiresAt, Date.parse(at));
    assert.equal(
      status(() => createRequest({ 'stream-expires-at': 'not-a-timestamp' })),
      400,
    );
    assert.equal(
      status(() => createRequest({ 'stream-ttl': '60', 'stream-expires-at': at })),
      400,
    );
  });

  it('Stream-Closed counts only as "true", any case', () => {
    assert.equal(createRequest({ 'stream-closed': 'TRUE' }).closed, true);
    for (const v of ['false', 'yes', '1', '']) assert.equal(appendRequest({ 'stream-closed': v }).closed, false);
  });

  it('producer headers: all three or none, whole numbers without junk', () => {
    assert.deepEqual(appendRequest({ 'producer-id': 'p', 'producer-epoch': '2', 'producer-seq': '0' }).producer, {
      id: 'p',
      epoch: 2,
      seq: 0,
    });
    assert.equal(
      status(() => appendRequest({ 'producer-id': 'p', 'producer-epoch': '0' })),
      400,
    );
    assert.equal(
      status(() => appendRequest({ 'producer-id': '', 'producer-epoch': '0', 'producer-seq': '0' })),
      400,
    );
    for (const v of ['1abc', '0xyz', '1e3', '-1', '9007199254740993']) {
      assert.equal(
        status(() => appendRequest({ 'producer-id': 'p', 'producer-epoch': v, 'producer-seq': '0' })),
        400,
        v,
      );
    }
  });

  it('fork headers need Stream-Forked-From; sub-offsets are whole numbers', () => {
    const fork = createRequest({ 'stream-forked-from': '/v1/a', 'stream-fork-sub-offset': '3' }).fork;
    assert.deepEqual(fork, { from: '/v1/a', subOffset: 3 });
    assert.equal(
      status(() => createRequest({ 'stream-fork-sub-offset': '0' })),
      400,
    );
    assert.equal(
      status(() => createRequest({ 'stream-fork-offset': formatOffset(1) })),
      400,
    );
    for (const v of ['-1', 'abc', '1.5', '05', '+1']) {
      assert.equal(
        status(() => createRequest({ 'stream-forked-from': '/a', 'stream-fork-sub-offset': v })),
        400,
        v,
      );
    }
  });

  it('content types compare by their media type, in any case', () => {
    assert.equal(mediaType('APPLICATION/JSON; charset=utf-8'), 'application/json');
    assert.equal(
      status(() => appendRequest({ 'content-type': 'not a type' })),
      400,
    );
  });
});

describe('payloads', () => {
  it('JSON: one level of array flattened, an empty array refused on append and empty on create', () => {
    const body = (s: string) => Buffer.from(s);
    assert.deepEqual(parseBody('json', body('{"a":1}'), false), { mode: 'json', messages: [{ a: 1 }] });
    assert.deepEqual(parseBody('json', body('[[1,2],[3]]'), false), { mode: 'json', messages: [[1, 2], [3]] });
    assert.equal(parseBody('json', body('[]'), true), undefined);
    assert.equal(
      status(() => parseBody('json', body('[]'), false)),
      400,
    );
    assert.equal(
      status(() => parseBody('json', body('{ bad }'), false)),
      400,
    );
    assert.equal(parseBody('json', body(''), false), undefined);
  });

  it('bytes: stored as text when valid UTF-8, else as base64, and come back exactly', () => {
    const cases = [
      Buffer.from('héllo\r\n'),
      Buffer.from([0xef, 0xbb, 0xbf, 0x41]),
      Buffer.from([0, 1, 0xfe, 0xff, 0x80]),
    ];
    for (const bytes of cases) {
      const data = JSON.parse(dataJson({ mode: 'bytes', bytes })) as unknown;
      assert.deepEqual(payloadOf('binary', data), { mode: 'bytes', bytes });
    }
    assert.equal(typeof JSON.parse(dataJson({ mode: 'bytes', bytes: cases[0] as Buffer })), 'string');
    assert.ok('base64' in JSON.parse(dataJson({ mode: 'bytes', bytes: cases[2] as Buffer })));
    assert.equal(payloadOf('text', null), undefined);
    assert.equal(modeOf('Text/Plain; charset=utf-8'), 'text');
    assert.equal(modeOf('application/x-protobuf'), 'binary');
  });

  it('prefixes (sub-offsets) and concatenation', () => {
    const bytes = { mode: 'bytes' as const, bytes: Buffer.from('hello') };
    assert.deepEqual(prefixOf(bytes, 3), { mode: 'bytes', bytes: Buffer.from('hel') });
    assert.equal(prefixOf(bytes, 0), undefined);
    assert.deepEqual(concat(prefixOf(bytes, 3), { mode: 'bytes', bytes: Buffer.from('XY') }), {
      mode: 'bytes',
      bytes: Buffer.from('helXY'),
    });
    assert.deepEqual(concat({ mode: 'json', messages: [1] }, { mode: 'json', messages: [2] }), {
      mode: 'json',
      messages: [1, 2],
    });
  });
});

describe('rendering', () => {
  it('bodies: bytes joined, JSON messages as one array', () => {
    const chunks = [
      { position: 1, payload: { mode: 'json' as const, messages: [{ a: 1 }] } },
      { position: 2, payload: { mode: 'json' as const, messages: [2, 'x'] } },
    ];
    assert.equal(renderBody('json', chunks).toString(), '[{"a":1},2,"x"]');
    assert.equal(renderBody('json', []).toString(), '[]');
    const bytes = [1, 2].map((p) => ({
      position: p,
      payload: { mode: 'bytes' as const, bytes: Buffer.from(`c${p}`) },
    }));
    assert.equal(renderBody('text', bytes).toString(), 'c1c2');
  });

  it('SSE: text split into data lines at CR, LF and CRLF, leading spaces kept; base64 for binary', () => {
    const text = (s: string) => sseDataEvent('text', { mode: 'bytes', bytes: Buffer.from(s) });
    assert.equal(text('a\r\n\r\nevent: control\rb'), 'event: data\ndata:a\ndata:\ndata:event: control\ndata:b\n\n');
    assert.equal(text(' lead'), 'event: data\ndata:  lead\n\n');
    assert.equal(
      sseDataEvent('binary', { mode: 'bytes', bytes: Buffer.from('Hello') }),
      'event: data\ndata:SGVsbG8=\n\n',
    );
    assert.equal(
      sseDataEvent('json', { mode: 'json', messages: [{ m: 'a\nb' }] }),
      'event: data\ndata:[{"m":"a\\nb"}]\n\n',
    );
    assert.equal(
      sseControlEvent({ streamNextOffset: formatOffset(3), upToDate: true, streamClosed: true }),
      `event: control\ndata:{"streamNextOffset":"${formatOffset(3)}","upToDate":true,"streamClosed":true}\n\n`,
    );
  });
});
