/**
 * Laravel Echo 2 with pusher-js on the hub, both as `broadcaster: 'pusher'` and as `'reverb'`:
 * public events by their Laravel class names, private channels, presence (`here`, `joining`,
 * `leaving`) and whispers, with events sent by the `pusher` server SDK as Laravel's broadcaster does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Echo from 'laravel-echo';
import { until } from '../../../test/support/hub.ts';
import { APP, PusherClient, serverSdk, startPusherHub, type PusherHub } from './support.ts';

describe('Laravel Echo with pusher-js', () => {
  let hub: PusherHub;
  const echoes: Echo<any>[] = [];

  before(async () => {
    hub = await startPusherHub();
  });
  after(async () => {
    for (const echo of echoes) echo.disconnect();
    await hub.close();
  });

  function echo(broadcaster: 'pusher' | 'reverb', member?: { user_id: string; user_info?: unknown }): Echo<any> {
    const signer = serverSdk(hub.port);
    const instance = new Echo({
      broadcaster,
      key: APP.key,
      cluster: 'local',
      wsHost: '127.0.0.1',
      wsPort: hub.port,
      wssPort: hub.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      Pusher: PusherClient,
      authorizer: (channel: { name: string }) => ({
        authorize: (socketId: string, callback: (error: Error | null, data: unknown) => void) => {
          callback(
            null,
            signer.authorizeChannel(
              socketId,
              channel.name,
              channel.name.startsWith('presence-') ? (member as { user_id: string }) : undefined,
            ),
          );
        },
      }),
    } as any);
    echoes.push(instance);
    return instance;
  }

  for (const broadcaster of ['pusher', 'reverb'] as const) {
    it(`${broadcaster}: listens to public and private channels by Laravel event class`, async () => {
      const e = echo(broadcaster);
      const got: unknown[] = [];
      e.channel('orders').listen('OrderShipped', (payload: unknown) => got.push(['public', payload]));
      e.private('orders.7').listen('.status.updated', (payload: unknown) => got.push(['private', payload]));
      await until(
        () => (e.connector as any).pusher.channel('private-orders.7')?.subscribed === true,
        'the private subscription',
      );
      await until(() => (e.connector as any).pusher.channel('orders')?.subscribed === true, 'the public subscription');
      const sdk = serverSdk(hub.port);
      await sdk.trigger('orders', 'App\\Events\\OrderShipped', { order: { id: 7 } });
      await sdk.trigger('private-orders.7', 'status.updated', { status: 'packed' });
      await until(() => got.length === 2, 'both events');
      assert.deepEqual(got.sort(), [
        ['private', { status: 'packed' }],
        ['public', { order: { id: 7 } }],
      ]);
    });

    it(`${broadcaster}: presence here / joining / leaving, and whispers`, async () => {
      const alice = echo(broadcaster, { user_id: '1', user_info: { name: 'Alice' } });
      const log: unknown[] = [];
      const room = `room-${broadcaster}`;
      const joined = alice
        .join(room)
        .here((members: unknown[]) => log.push(['here', members]))
        .joining((member: unknown) => log.push(['joining', member]))
        .leaving((member: unknown) => log.push(['leaving', member]))
        .listenForWhisper('typing', (payload: unknown) => log.push(['whisper', payload]));
      void joined;
      await until(() => log.length === 1, 'here');
      assert.deepEqual(log[0], ['here', [{ name: 'Alice' }]]);
      const bob = echo(broadcaster, { user_id: '2', user_info: { name: 'Bob' } });
      const bobRoom = bob.join(room);
      await until(() => log.length === 2, 'joining');
      assert.deepEqual(log[1], ['joining', { name: 'Bob' }]);
      bobRoom.whisper('typing', { who: 'Bob' });
      await until(() => log.length === 3, 'the whisper');
      assert.deepEqual(log[2], ['whisper', { who: 'Bob' }]);
      bob.leave(room);
      await until(() => log.length === 4, 'leaving');
      assert.deepEqual(log[3], ['leaving', { name: 'Bob' }]);
    });
  }
});
