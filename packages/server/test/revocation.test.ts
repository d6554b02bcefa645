/**
 * Token revocation on one node (docs/protocol-extensions.md, "Revocation"): the pure rules
 * (which tokens an entry refuses, how long it lives, how two combine), `POST /api/revoke` with
 * its errors, refusal on every transport from the moment it answers, live connections ended with
 * 4001 "token revoked", and the maximum token lifetime that bounds how long entries are kept.
 * Clusters, Redis, NATS and restarts: test/cluster/revocation.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeraldError } from '@herald/protocol';
import { combineRevocations, type Revocation } from '@herald/server';
import { revocationFor } from '../src/revocation/revocation.ts';
import { api, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { poll } from '../../../test/support/poll.ts';
import { RawSse, streamQuery } from '../../../test/support/sse.ts';
import { ACCEPTED, REFUSED, tryEverywhere } from '../../../test/support/token-check.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';

const now = (): number => Math.floor(Date.now() / 1000);
const NO_LIMIT = { maxLifetimeSeconds: 0, leewaySeconds: 0 };

function badRequest(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HeraldError);
    assert.equal(error.code, 'bad_request');
    assert.match(error.message, message);
    return true;
  });
}

describe('revocation rules', () => {
  it('refuses bad requests with a sentence that says what to send', () => {
    const t = 1_763_700_000;
    badRequest(() => revocationFor({}, NO_LIMIT, t), /either "user".*or "jti"/);
    badRequest(() => revocationFor({ user: 'a', jti: 'b' }, NO_LIMIT, t), /either/);
    badRequest(() => revocationFor({ user: '' }, NO_LIMIT, t), /"user"/);
    badRequest(() => revocationFor({ user: 42 }, NO_LIMIT, t), /"user"/);
    badRequest(() => revocationFor({ user: 'x'.repeat(201) }, NO_LIMIT, t), /"user"/);
    badRequest(() => revocationFor({ user: 'a', before: 'yesterday' }, NO_LIMIT, t), /"before"/);
    badRequest(() => revocationFor({ user: 'a', before: t + 61 }, NO_LIMIT, t), /not in the future/);
    badRequest(() => revocationFor({ user: 'a', exp: t }, NO_LIMIT, t), /"exp" goes with "jti"/);
    badRequest(() => revocationFor({ jti: 'a', before: t }, NO_LIMIT, t), /"before" goes with "user"/);
    badRequest(() => revocationFor({ jti: 'x'.repeat(257) }, NO_LIMIT, t), /"jti"/);
    badRequest(() => revocationFor({ jti: 'a', exp: -1 }, NO_LIMIT, t), /"exp"/);
  });

  it('bounds each entry by the longest life of a token it can match', () => {
    const t = 1_763_700_000;
    const policy = { maxLifetimeSeconds: 3600, leewaySeconds: 10 };
    // A user: tokens issued before `before` live at most until before + max lifetime + leeway.
    assert.deepEqual(revocationFor({ user: 'a' }, policy, t), {
      kind: 'user',
      userId: 'a',
      before: t,
      expiresAt: t + 3610,
    });
    assert.deepEqual(revocationFor({ user: 'a', before: t - 100 }, policy, t), {
      kind: 'user',
      userId: 'a',
      before: t - 100,
      expiresAt: t + 3510,
    });
    // A token id: until its exp plus leeway, never beyond what any token accepted now can live.
    assert.deepEqual(revocationFor({ jti: 'j', exp: t + 60 }, policy, t), {
      kind: 'token',
      jti: 'j',
      expiresAt: t + 70,
    });
    assert.deepEqual(revocationFor({ jti: 'j', exp: t + 99_999 }, policy, t), {
      kind: 'token',
      jti: 'j',
      expiresAt: t + 3620,
    });
    assert.deepEqual(revocationFor({ jti: 'j' }, policy, t), { kind: 'token', jti: 'j', expiresAt: t + 3620 });
    // No maximum lifetime: only a jti with exp can ever expire.
    assert.deepEqual(revocationFor({ user: 'a' }, NO_LIMIT, t), { kind: 'user', userId: 'a', before: t });
    assert.deepEqual(revocationFor({ jti: 'j' }, NO_LIMIT, t), { kind: 'token', jti: 'j' });
    assert.deepEqual(revocationFor({ jti: 'j', exp: t + 5 }, NO_LIMIT, t), {
      kind: 'token',
      jti: 'j',
      expiresAt: t + 5,
    });
  });

  it('combines two entries for one key into one that refuses what either refuses, as long as either', () => {
    const a: Revocation = { kind: 'user', userId: 'u', before: 100, expiresAt: 500 };
    const b: Revocation = { kind: 'user', userId: 'u', before: 200, expiresAt: 400 };
    const forever: Revocation = { kind: 'user', userId: 'u', before: 50 };
    assert.deepEqual(combineRevocations(a, b), { kind: 'user', userId: 'u', before: 200, expiresAt: 500 });
    assert.deepEqual(combineRevocations(b, a), combineRevocations(a, b));
    assert.deepEqual(combineRevocations(a, forever), { kind: 'user', userId: 'u', before: 100 });
    assert.deepEqual(combineRevocations(forever, a), { kind: 'user', userId: 'u', before: 100 });
    const t1: Revocation = { kind: 'token', jti: 'j', expiresAt: 10 };
    assert.deepEqual(combineRevocations(t1, { kind: 'token', jti: 'j', expiresAt: 20 }), {
      kind: 'token',
      jti: 'j',
      expiresAt: 20,
    });
    assert.deepEqual(combineRevocations(t1, { kind: 'token', jti: 'j' }), { kind: 'token', jti: 'j' });
  });
});

describe('POST /api/revoke on one node', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ anonymousChannels: ['public:*'] });
  });
  after(() => hub.close());

  it('needs the API key and a JSON object, and says what was stored', async () => {
    assert.equal((await api(hub, 'POST', '/api/revoke', { user: 'x' }, 'wrong-key')).status, 401);
    const client = await api(hub, 'POST', '/api/revoke', { user: 'x' }, await token({ sub: 'x' }));
    assert.equal(client.status, 403);
    assert.equal(client.body.error.code, 'forbidden');
    assert.equal((await api(hub, 'GET', '/api/revoke')).status, 405);
    assert.equal((await api(hub, 'POST', '/api/revoke', '[1]')).body.error.code, 'bad_request');
    assert.equal((await api(hub, 'POST', '/api/revoke', '{nope')).status, 400);
    assert.equal((await api(hub, 'POST', '/api/revoke', { user: 'x', jti: 'y' })).status, 400);
    const before = Date.now() / 1000;
    const answer = await api(hub, 'POST', '/api/revoke', { user: 'nobody' });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.user, 'nobody');
    assert.ok(answer.body.before >= before && answer.body.before <= Date.now() / 1000, 'before defaults to now');
    assert.equal(answer.body.expiresAt, undefined, 'kept for good without a maximum token lifetime');
    assert.deepEqual((await api(hub, 'POST', '/api/revoke', { jti: 'j-1', exp: now() + 60 })).body, {
      jti: 'j-1',
      expiresAt: now() + 60,
    });
  });

  it("refuses a user's earlier tokens on every transport, and ends that user's live connections only", async () => {
    const old = await token({ sub: 'mallory', iat: now() - 60 });
    const other = await token({ sub: 'bob', iat: now() - 60 });
    const noIat = await token({ sub: 'mallory', iat: undefined });
    const ws = await WsTestClient.connect(hub.wsUrl, old);
    await ws.ok('subscribe', { channel: 'c' });
    const wsOther = await WsTestClient.connect(hub.wsUrl, other);
    const wsAnonymous = await WsTestClient.connect(hub.wsUrl);
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery(['c'], { token: old })}`);
    assert.equal(sse.status, 200);
    await until(() => sse.events.length > 0, 'herald.connected');
    const waiting = poll(hub.url, { channels: ['c'], token: old, timeout: 20 });
    await until(() => hub.server.hub.stats.connections.poll === 1, 'the waiting poll');

    const answer = await api(hub, 'POST', '/api/revoke', { user: 'mallory', before: now() - 30 });
    assert.equal(answer.status, 200);
    await until(() => ws.closeCode !== undefined, 'the WebSocket to be closed');
    assert.equal(ws.closeCode, 4001);
    assert.deepEqual(ws.pushes.at(-1), { push: 'disconnect', code: 4001, reason: 'token revoked', reconnect: false });
    assert.equal(ws.closeReason, 'token revoked');
    await sse.ended;
    assert.deepEqual(sse.named('herald.disconnect'), [{ code: 4001, reason: 'token revoked', reconnect: false }]);
    assert.equal((await waiting).status, 200, 'a waiting poll is answered at once');
    // Refused everywhere from then on: the old token, and one without iat (its age is unknown).
    assert.deepEqual(await tryEverywhere(hub, old), REFUSED);
    assert.deepEqual(await tryEverywhere(hub, noIat), REFUSED, 'no iat');
    const refused = await poll(hub.url, { channels: ['c'], token: old, timeout: 0 });
    assert.equal(refused.body.error.message, 'token revoked');
    // A token issued after `before` works; other users and anonymous clients were never touched.
    assert.deepEqual(await tryEverywhere(hub, await token({ sub: 'mallory' })), ACCEPTED, 'a fresh token');
    assert.equal(wsOther.closeCode, undefined);
    assert.equal(wsAnonymous.closeCode, undefined);
    assert.deepEqual(await tryEverywhere(hub, other), ACCEPTED);
    wsOther.close();
    wsAnonymous.close();
  });

  it("refuses one token by its jti and ends the connections that use it, leaving the user's other tokens", async () => {
    const leaked = await token({ sub: 'carol', jti: 'leaked-1' });
    const kept = await token({ sub: 'carol', jti: 'kept-1' });
    const a = await WsTestClient.connect(hub.wsUrl, leaked);
    const b = await WsTestClient.connect(hub.wsUrl, kept);
    assert.equal((await api(hub, 'POST', '/api/revoke', { jti: 'leaked-1' })).status, 200);
    await until(() => a.closeCode !== undefined, 'the WebSocket to be closed');
    assert.equal(a.closeCode, 4001);
    assert.equal(a.closeReason, 'token revoked');
    assert.deepEqual(await tryEverywhere(hub, leaked), REFUSED);
    assert.deepEqual(await tryEverywhere(hub, kept), ACCEPTED);
    // A refresh to a revoked token is refused; the connection keeps the token it has.
    const refresh = await b.call('refresh', { token: leaked });
    assert.equal(refresh.error?.code, 'unauthorized');
    assert.equal(refresh.error?.message, 'token revoked');
    assert.equal((await b.call('ping')).error, undefined);
    b.close();
  });
});

describe('maximum token lifetime (HERALD_JWT_MAX_LIFETIME)', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ jwtMaxLifetimeSeconds: 60, jwtLeewaySeconds: 5 });
  });
  after(() => hub.close());

  it('needs iat, refuses tokens older than the lifetime or issued in the future, and ends connections at that age', async () => {
    assert.deepEqual(await tryEverywhere(hub, await token({ iat: undefined })), REFUSED, 'no iat');
    assert.deepEqual(await tryEverywhere(hub, await token({ iat: undefined, expiresIn: 30 })), REFUSED, 'exp, no iat');
    assert.deepEqual(await tryEverywhere(hub, await token({ iat: now() - 66 })), REFUSED, 'older than 60 s + 5 s');
    assert.deepEqual(await tryEverywhere(hub, await token({ iat: now() + 30 })), REFUSED, 'issued in the future');
    assert.deepEqual(await tryEverywhere(hub, await token({ iat: now() - 63 })), ACCEPTED, 'within the leeway');
    // No exp: the connection still ends when the token reaches the lifetime (plus leeway).
    const client = await WsTestClient.connect(hub.wsUrl, await token({ iat: now() - 40 }));
    const expiresIn = client.replies.get(1)?.result.expiresIn;
    assert.ok(expiresIn >= 23 && expiresIn <= 25, `expiresIn ${expiresIn}`);
    const shorter = await WsTestClient.connect(hub.wsUrl, await token({ iat: now() - 40, expiresIn: 5 }));
    assert.ok(shorter.replies.get(1)?.result.expiresIn <= 10, 'exp wins when it is sooner');
    client.close();
    shorter.close();
    // Revocations now expire: a user's entry once tokens issued before it are past the lifetime.
    const revoked = await api(hub, 'POST', '/api/revoke', { user: 'dave', before: now() });
    assert.equal(revoked.body.expiresAt, revoked.body.before + 65);
  });
});
