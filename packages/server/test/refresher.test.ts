/**
 * The refresh hook's scheduler (hooks/refresher.ts) on an injected clock: it holds only
 * hook-authenticated sessions with an expiry, offers each to the hook at half its remaining
 * lifetime and not before, plans a session again from credentials replaced in the meantime,
 * retries a hook that was unavailable, and forgets refused and closed sessions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closeInfo, CloseCode, compilePatterns } from '@herald/protocol';
import { BackendHooks, Hub, MemoryBroker, MemoryPresence, type Credentials, type Session } from '@herald/server';
import { pino } from 'pino';
import { FakePeer } from './support/fake-peer.ts';
import { HookRefresher } from '../src/hooks/refresher.ts';

let clock = 1_000_000_000;
const now = (): number => clock;

function credentials(userId: string, expiresAt?: number, viaHook = true): Credentials {
  return {
    userId,
    canSubscribe: compilePatterns(['*']),
    canPublish: compilePatterns(['*']),
    ...(viaHook ? { viaHook } : {}),
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

async function setup(answer: (user: string) => unknown) {
  const logger = pino({ level: 'silent' });
  const hub = new Hub({
    broker: new MemoryBroker({ size: 10, ttlSeconds: 600 }),
    presence: new MemoryPresence(),
    logger,
    now,
    limits: {
      maxMessageBytes: 65_536,
      historySize: 10,
      maxQueueBytes: 1_048_576,
      ephemeralDropBytes: 524_288,
      maxSubscriptionsPerSession: 128,
    },
  });
  await hub.start();
  const asked: string[] = [];
  const hooks = new BackendHooks(
    {
      refresh: (request: { user?: string }) => {
        asked.push(request.user ?? '');
        return answer(request.user ?? '') as never;
      },
    },
    logger,
  );
  const refresher = new HookRefresher(hub, hooks);
  const open = (c: Credentials): Session => hub.openSession(new FakePeer(), c);
  /** Moves the clock, sweeps, and lets the hook's answers land. */
  const sweepAt = async (at: number): Promise<void> => {
    clock = at;
    refresher.sweep();
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  return { hub, refresher, asked, open, sweepAt };
}

describe('the refresh hook scheduler', () => {
  it('holds only hook-authenticated sessions with an expiry, and offers each at half its lifetime', async () => {
    const start = clock;
    const extendedTo = start + 600_000;
    const { hub, refresher, asked, open, sweepAt } = await setup(() => ({ expiresAt: extendedTo / 1000 }));
    const a = open(credentials('a', start + 60_000));
    open(credentials('jwt', start + 60_000, false));
    open(credentials('forever'));
    const closed = open(credentials('closed', start + 60_000));
    assert.equal(refresher.planned, 2);
    hub.endSession(closed, closeInfo(CloseCode.Normal));
    assert.equal(refresher.planned, 1);

    await sweepAt(start + 29_999);
    assert.deepEqual(asked, []);
    await sweepAt(start + 30_000);
    assert.deepEqual(asked, ['a']);
    assert.equal(a.credentials.expiresAt, extendedTo);
    // Planned again from the new expiry: half of the 570 s left.
    assert.equal(refresher.planned, 1);
    await sweepAt(start + 30_000 + 284_999);
    assert.deepEqual(asked, ['a']);
    await sweepAt(start + 30_000 + 285_000);
    assert.deepEqual(asked, ['a', 'a']);
  });

  it('plans a session again when its credentials were replaced before its turn', async () => {
    const start = clock;
    const { hub, asked, open, sweepAt } = await setup(() => ({ expiresAt: (start + 900_000) / 1000 }));
    const session = open(credentials('b', start + 60_000));
    // The client's own `refresh` (through the hook, or with a token) before the planned turn.
    hub.refresh(session, credentials('b', start + 200_000));
    await sweepAt(start + 30_000);
    assert.deepEqual(asked, [], 'not offered at the turn planned for the old expiry');
    // Planned from the new expiry at that sweep: half of the 170 s left.
    await sweepAt(start + 30_000 + 85_000);
    assert.deepEqual(asked, ['b']);

    const jwt = open(credentials('c', start + 400_000));
    hub.refresh(jwt, credentials('c', start + 400_000, false));
    await sweepAt(start + 400_000 - 1);
    assert.deepEqual(asked, ['b'], 'a session now authenticated by a token is not offered');
  });

  it('tries an unavailable hook again at the next sweep, and stops at a refusal', async () => {
    const start = clock;
    let fail = true;
    const { refresher, asked, open, sweepAt } = await setup((user) => {
      if (user === 'refused') return { error: { code: 'forbidden', message: 'no' } };
      if (fail) throw new Error('backend down');
      return { expiresAt: (start + 900_000) / 1000 };
    });
    open(credentials('flaky', start + 10_000));
    open(credentials('refused', start + 10_000));
    await sweepAt(start + 5_000);
    assert.deepEqual(asked.sort(), ['flaky', 'refused']);
    assert.equal(refresher.planned, 1, 'the unavailable one is planned again, the refused one is not');
    fail = false;
    await sweepAt(start + 6_000);
    assert.deepEqual(asked.sort(), ['flaky', 'flaky', 'refused']);
    await sweepAt(start + 9_999);
    assert.equal(asked.length, 3, 'refused: not offered again before its expiry');
  });
});
