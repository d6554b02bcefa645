/**
 * Socket.IO connection auth follows the hub's token rules: `auth.token` (or an Authorization
 * header), refusals as `connect_error` with the hub's code in `err.data`, anonymous channels when
 * configured, and refusals counted in herald_auth_failures_total.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { token, until } from '../../../test/support/hub.ts';
import { SioClient, startSioHub, type SioHub } from './support.ts';

let hub: SioHub;
before(async () => {
  hub = await startSioHub({ anonymousChannels: ['public:*'], maxConnectionsPerUser: 2 });
});
after(() => hub.close());

/** Connects without retrying and returns the connect_error's data. */
async function refusal(options: Record<string, unknown>): Promise<any> {
  const client = new SioClient(hub.url, 'websocket', { reconnection: false, ...options });
  try {
    await until(() => client.connectErrors.length > 0 || client.socket.connected, 'the connect answer');
    assert.equal(client.socket.connected, false, 'the connection was refused');
    const error = client.connectErrors[0];
    assert.equal(error.message, error.data?.message);
    return error.data;
  } finally {
    client.close();
  }
}

describe('Socket.IO auth', () => {
  it('refuses bad tokens with connect_error { code: "unauthorized" } and counts them', async () => {
    const failures = hub.server.hub.stats.authFailures;
    const badSignature = await token({ secret: 'another-secret-0123456789abcdef0123' });
    assert.deepEqual(await refusal({ auth: { token: badSignature } }), {
      code: 'unauthorized',
      message: 'token signature is not valid',
    });
    assert.deepEqual(await refusal({ auth: { token: await token({ expiresIn: -10 }) } }), {
      code: 'unauthorized',
      message: 'token expired',
    });
    assert.equal((await refusal({ auth: { token: 'not.a.jwt' } })).code, 'unauthorized');
    assert.equal((await refusal({ auth: { token: 42 } })).code, 'unauthorized');
    const none = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5IiwiY2hhbm5lbHMiOlsiKiJdfQ.';
    assert.equal((await refusal({ auth: { token: none } })).code, 'unauthorized');
    assert.equal(hub.server.hub.stats.authFailures, failures + 5);
  });

  it('lets anonymous clients read the anonymous channels only', async () => {
    const anonymous = await SioClient.connect(hub.url, 'polling');
    try {
      await until(() => anonymous.events('herald.connected').length === 1, 'herald.connected');
      assert.equal(anonymous.events('herald.connected')[0]?.[0].userId, undefined);
      assert.equal((await anonymous.call('subscribe', { channel: 'public:news' })).ok, true);
      const forbidden = await anonymous.call('subscribe', { channel: 'private:1' });
      assert.equal(forbidden.error.code, 'forbidden');
      const publish = await anonymous.call('publish', { channel: 'public:news', data: 1 });
      assert.equal(publish.error.code, 'forbidden');
    } finally {
      anonymous.close();
    }
  });

  it('takes the token from an Authorization header too', async () => {
    const client = await SioClient.connect(hub.url, 'websocket', {
      extraHeaders: { authorization: `Bearer ${await token({ sub: 'header-user' })}` },
    });
    try {
      await until(() => client.events('herald.connected').length === 1, 'herald.connected');
      assert.equal(client.events('herald.connected')[0]?.[0].userId, 'header-user');
    } finally {
      client.close();
    }
  });

  it("refuses a user's connection past the per-user cap with rate_limited", async () => {
    const jwt = await token({ sub: 'busy-user' });
    const first = await SioClient.connect(hub.url, 'websocket', { auth: { token: jwt } });
    const second = await SioClient.connect(hub.url, 'polling', { auth: { token: jwt } });
    try {
      assert.equal((await refusal({ auth: { token: jwt } })).code, 'rate_limited');
    } finally {
      first.close();
      second.close();
    }
  });
});
