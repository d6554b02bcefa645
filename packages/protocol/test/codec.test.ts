import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ERROR_CODES,
  HeraldError,
  errorReplyJson,
  parseCommand,
  publicationJson,
  pubPushJson,
  replyJson,
} from '@herald/protocol';

describe('parseCommand', () => {
  it('accepts a well-formed command and defaults params to {}', () => {
    assert.deepEqual(parseCommand('{"id":1,"method":"ping"}'), {
      ok: true,
      command: { id: 1, method: 'ping', params: {} },
    });
    const parsed = parseCommand('{"id":7,"method":"subscribe","params":{"channel":"a"}}');
    assert.equal(parsed.ok, true);
    assert.deepEqual(parsed.ok && parsed.command.params, { channel: 'a' });
  });

  it('treats unparseable frames, non-objects, bad ids and unknown methods as fatal (close 4002)', () => {
    for (const text of [
      'not json',
      '',
      '[1,2]',
      'null',
      '"ping"',
      '{"method":"ping"}',
      '{"id":0,"method":"ping"}',
      '{"id":-1,"method":"ping"}',
      '{"id":1.5,"method":"ping"}',
      '{"id":"1","method":"ping"}',
      '{"id":1,"method":"launch"}',
      '{"id":1}',
      '{"id":1,"method":"toString"}',
    ]) {
      const parsed = parseCommand(text);
      assert.equal(parsed.ok, false, text);
      assert.equal(!parsed.ok && parsed.fatal, true, text);
    }
  });

  it('answers params that are not an object with bad_request for that id, not a close', () => {
    for (const params of ['[]', '"x"', '3', 'null']) {
      const parsed = parseCommand(`{"id":4,"method":"ping","params":${params}}`);
      assert.deepEqual(parsed, {
        ok: false,
        fatal: false,
        id: 4,
        code: 'bad_request',
        reason: 'params must be a JSON object',
      });
    }
  });

  it('bounds the echoed method name in the reason', () => {
    const parsed = parseCommand(JSON.stringify({ id: 1, method: 'x'.repeat(10_000) }));
    assert.equal(parsed.ok, false);
    assert.ok(!parsed.ok && parsed.reason.length < 100);
  });
});

describe('publication JSON', () => {
  it('is the object of PROTOCOL section 2, with fields in order', () => {
    const json = publicationJson({
      channel: 'orders:42',
      offset: 17,
      epoch: 'h4x9',
      dataJson: '{"status":"shipped"}',
      event: 'status_update',
      ts: 1763700000000,
    });
    assert.equal(
      json,
      '{"channel":"orders:42","offset":17,"epoch":"h4x9","data":{"status":"shipped"},"event":"status_update","ts":1763700000000}',
    );
  });

  it('leaves out event when absent, and offset/epoch for ephemeral publications', () => {
    const pub = JSON.parse(publicationJson({ channel: 'typing', dataJson: '1', ts: 5 }));
    assert.deepEqual(pub, { channel: 'typing', data: 1, ts: 5 });
    assert.ok(!('offset' in pub) && !('epoch' in pub) && !('event' in pub));
  });

  it('carries the publisher info when given, and escapes event names', () => {
    const pub = JSON.parse(
      publicationJson({
        channel: 'c',
        offset: 1,
        epoch: 'e',
        dataJson: 'null',
        event: 'say "hi"',
        ts: 1,
        infoJson: '{"n":1}',
      }),
    );
    assert.deepEqual(pub, {
      channel: 'c',
      offset: 1,
      epoch: 'e',
      data: null,
      event: 'say "hi"',
      ts: 1,
      info: { n: 1 },
    });
  });

  it('wraps publications, replies and errors in valid frames', () => {
    assert.deepEqual(JSON.parse(pubPushJson('{"channel":"c"}')), { push: 'pub', pub: { channel: 'c' } });
    assert.deepEqual(JSON.parse(replyJson(3, { a: 1 })), { id: 3, result: { a: 1 } });
    assert.deepEqual(JSON.parse(errorReplyJson(3, 'forbidden', 'no "way"')), {
      id: 3,
      error: { code: 'forbidden', message: 'no "way"' },
    });
  });
});

describe('error registry', () => {
  it('maps every code to the HTTP status the protocol gives it', () => {
    const expected: Record<string, number> = {
      bad_request: 400,
      unauthorized: 401,
      forbidden: 403,
      not_found: 404,
      method_not_allowed: 405,
      too_large: 413,
      rate_limited: 429,
      not_ready: 503,
    };
    for (const [code, status] of Object.entries(expected)) {
      assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES], status, code);
    }
    const error = new HeraldError('too_large', 'big');
    assert.equal(error.status, 413);
    assert.deepEqual(error.toWire(), { code: 'too_large', message: 'big' });
  });
});
