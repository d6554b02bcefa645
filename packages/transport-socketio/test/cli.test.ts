/**
 * `herald serve` serves Socket.IO clients by default, and not with HERALD_SOCKETIO=false.
 * Runs the built binary (npm run build), as a user would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JWT_SECRET, token } from '../../../test/support/hub.ts';
import { runHerald } from '../../../test/support/cli.ts';
import { SioClient } from './support.ts';

const ENV = { PORT: '0', HOST: '127.0.0.1', HERALD_JWT_SECRET: JWT_SECRET, HERALD_LOG_LEVEL: 'silent' };

describe('herald serve', () => {
  it('serves Socket.IO on /socket.io/ by default', async () => {
    const herald = runHerald(['serve'], ENV);
    try {
      const base = await herald.listening;
      const client = await SioClient.connect(base, 'upgrade', { auth: { token: await token() } });
      try {
        assert.equal((await client.call('subscribe', { channel: 'cli:1' })).ok, true);
      } finally {
        client.close();
      }
    } finally {
      herald.kill();
      await herald.exited;
    }
  });

  it('does not with HERALD_SOCKETIO=false', async () => {
    const herald = runHerald(['serve'], { ...ENV, HERALD_SOCKETIO: 'false' });
    try {
      const base = await herald.listening;
      const answer = await fetch(`${base}/socket.io/?EIO=4&transport=polling`);
      assert.equal(answer.status, 404);
    } finally {
      herald.kill();
      await herald.exited;
    }
  });
});
