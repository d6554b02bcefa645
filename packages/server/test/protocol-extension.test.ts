/**
 * The two extension points a protocol plugin uses beyond a codec (docs/architecture.md, "Adding a
 * protocol"): commands of its own in the command session, and `hub.signIn` for a user named on an
 * open connection, which the hub's cluster-wide `disconnectUser` then reaches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeraldError, type ClientInfo, type DisconnectInfo } from '@herald/protocol';
import { CommandSession, type Answer, type CommandPeer, type Credentials } from '@herald/server';
import { startHub, until, type TestHub } from '../../../test/support/hub.ts';

class Peer implements CommandPeer<string> {
  readonly kind = 'test-protocol';
  readonly answers: Array<[string, Answer]> = [];
  readonly refusals: Array<[string, string]> = [];
  ended: DisconnectInfo | undefined;
  bufferedBytes(): number {
    return 0;
  }
  writePublication(): void {}
  writeJoinLeave(_kind: 'join' | 'leave', _channel: string, _client: ClientInfo): void {}
  writeUnsubscribed(): void {}
  end(info: DisconnectInfo): void {
    this.ended = info;
  }
  answer(ref: string, answer: Answer): boolean {
    this.answers.push([ref, answer]);
    return false;
  }
  refuse(ref: string, error: HeraldError): void {
    this.refusals.push([ref, error.code]);
  }
  drained(): Promise<boolean> {
    return Promise.resolve(true);
  }
}

const anonymous: Credentials = { userId: '', canSubscribe: () => true, canPublish: () => false };

describe('protocol extension points', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('runs a protocol command in order with the built-in ones; a subscribe answer is activated; errors are refused', async () => {
    const peer = new Peer();
    const seen: string[] = [];
    const commands = new CommandSession<string>(hub.server.hub, peer, {
      authenticate: () => anonymous,
      commandRate: { perSecond: 1000, burst: 1000 },
      pingIntervalSeconds: 25,
      connectCommand: false,
      commands: new Map([
        [
          'my:subscribe',
          async (session, params) => {
            seen.push(`subscribe ${String(params.channel)}`);
            const outcome = await hub.server.hub.subscribe(session, params.channel, { member: { userId: 'picked' } });
            return { method: 'subscribe', channel: outcome.subscription.channel, outcome };
          },
        ],
        [
          'my:fail',
          () => {
            throw new HeraldError('forbidden', 'no');
          },
        ],
      ]),
    });
    commands.open(anonymous);
    commands.receive('a', 'my:subscribe', { channel: 'ext:1' });
    commands.receive('b', 'ping', {});
    commands.receive('c', 'my:fail', {});
    await until(() => peer.answers.length === 2 && peer.refusals.length === 1, 'the answers');
    assert.deepEqual(
      peer.answers.map(([ref, a]) => [ref, a.method]),
      [
        ['a', 'subscribe'],
        ['b', 'ping'],
      ],
    );
    assert.deepEqual(peer.refusals, [['c', 'forbidden']]);
    const present = await hub.server.hub.presence('ext:1');
    assert.deepEqual(
      present.map((c) => c.userId),
      ['picked'],
    );
    commands.peerClosed('done');
  });

  it('signIn gives an anonymous session a user that disconnectUser reaches; a second signIn is refused', async () => {
    const peer = new Peer();
    const session = hub.server.hub.openSession(peer, anonymous);
    hub.server.hub.signIn(session, { ...anonymous, userId: 'later' });
    assert.equal(session.userId, 'later');
    assert.throws(() => hub.server.hub.signIn(session, { ...anonymous, userId: 'other' }), /already signed in/);
    await hub.server.hub.disconnectUser('later', { code: 4001, reason: 'gone', reconnect: false });
    await until(() => peer.ended !== undefined, 'the disconnect');
    assert.equal(peer.ended?.code, 4001);
  });
});
