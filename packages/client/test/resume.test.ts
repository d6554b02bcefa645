/**
 * Gapless resume on every transport (forced), against a real hub over real sockets: connections
 * cut by a proxy while a publisher runs, and the hub killed and restarted at the same address. The
 * app must see every publication exactly once in order, or be told `recovered: false`.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import type { ClientState } from '@herald/client';
import { startHub, token, until } from '../../../test/support/hub.ts';
import { RestartableAt } from '../../../test/support/hub-restart.ts';
import { TcpProxy } from '../../../test/support/tcp-proxy.ts';
import {
  assertExactlyOnceInOrder,
  closeClients,
  newClient,
  publisher,
  pubs,
  record,
  states,
  TRANSPORTS,
} from './helpers.ts';

afterEach(closeClients);

/** The hub never sent anything out of order: the SDK's gap repair (4007) never had to step in. */
function assertNoResync(seen: ClientState[]): void {
  const resyncs = seen.filter((s) => s.state === 'disconnected' && s.error.closeCode === 4007);
  assert.equal(resyncs.length, 0, 'no publication arrived out of order');
}

for (const transport of TRANSPORTS) {
  describe(`resume over ${transport}`, () => {
    const hubs: { close(): Promise<void> }[] = [];
    const proxies: TcpProxy[] = [];
    after(async () => {
      for (const proxy of proxies) await proxy.close();
      for (const hub of hubs) await hub.close().catch(() => undefined);
    });

    it('delivers every publication exactly once, in order, across cut connections', async () => {
      const hub = await startHub();
      hubs.push(hub);
      const proxy = new TcpProxy(hub.port);
      proxies.push(proxy);
      await proxy.listen();
      const channel = `cut:${transport}`;
      const client = newClient(proxy.url, { transports: [transport], token: () => token() });
      const seen = states(client);
      const sub = client.subscribe(channel);
      const log = record(sub);
      await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      const run = publisher(() => hub, channel);
      let cuts = 0;
      for (let i = 0; i < 4; i++) {
        const before = pubs(log).length;
        await until(() => pubs(log).length >= before + 5, `publications before cut ${i}`, 20_000);
        cuts += proxy.cutAll() > 0 ? 1 : 0;
      }
      await run.stop();
      const last = run.acked.at(-1)!;
      await until(() => sub.position?.offset === last.offset, 'the last acknowledged publication', 20_000);
      assert.ok(cuts >= 3, 'connections were cut while publishing');
      assertExactlyOnceInOrder(log);
      assert.deepEqual(
        pubs(log).map((e) => (e.kind === 'pub' ? e.data.seq : -1)),
        run.acked.map((a) => a.seq),
        'every acknowledged publication, once, in order',
      );
      assert.ok(
        log.every((e) => e.kind !== 'recovered' || e.recovered),
        'nothing was lost: every resume recovered',
      );
      assert.ok(
        log.some((e) => e.kind === 'recovered'),
        'the app heard about the resumes',
      );
      assertNoResync(seen);
    });

    it('resumes after the hub is killed and restarted at the same address, reporting recovered: false', async () => {
      const hub = await RestartableAt.start(() => startHub());
      hubs.push(hub);
      const channel = `restart:${transport}`;
      const client = newClient(hub.url, { transports: [transport], token: () => token() });
      const seen = states(client);
      const sub = client.subscribe(channel);
      const log = record(sub);
      await until(() => sub.state === 'subscribed', 'subscribed', 10_000);
      const run = publisher(() => hub, channel);
      await until(() => pubs(log).length >= 10, 'publications before the restart', 20_000);
      const firstEpoch = sub.position!.epoch;
      await hub.restart();
      // Keep publishing until the client is back on the new stream: a client that came back only
      // after the last publication (a slow reconnect under load) would have no new stream to check.
      await until(
        () =>
          run.acked.filter((a) => a.epoch !== firstEpoch).length >= 10 &&
          pubs(log).some((e) => e.kind === 'pub' && e.epoch !== firstEpoch),
        'publications after the restart, received on the new stream',
        20_000,
      );
      await run.stop();
      const last = run.acked.at(-1)!;
      await until(
        () => sub.position?.epoch === last.epoch && sub.position.offset === last.offset,
        'the last acknowledged publication',
        20_000,
      );
      assertExactlyOnceInOrder(log);
      const lost = log.findIndex((e) => e.kind === 'recovered' && !e.recovered);
      assert.ok(lost !== -1, 'the app was told recovered: false (the memory broker lost its history)');
      const newEpoch = log.slice(lost + 1).filter((e) => e.kind === 'pub');
      assert.ok(
        newEpoch.length > 0 && newEpoch.every((e) => e.epoch === last.epoch),
        // Should it fail: say what came instead.
        `then the new stream (epoch ${last.epoch}); after the first recovered: false came ` +
          JSON.stringify(log.slice(lost, lost + 12)) +
          `; every recovered event: ${JSON.stringify(log.filter((e) => e.kind === 'recovered'))}` +
          `; acknowledged epochs: ${JSON.stringify([...new Set(run.acked.map((a) => a.epoch))])}`,
      );
      // Everything acknowledged in the new epoch from where the client picked it up, exactly once.
      const from = newEpoch[0]!.kind === 'pub' ? newEpoch[0]!.offset : 0;
      assert.deepEqual(
        newEpoch.map((e) => e.kind === 'pub' && e.offset),
        run.acked.filter((a) => a.epoch === last.epoch && a.offset >= from).map((a) => a.offset),
      );
      assertNoResync(seen);
    });
  });
}
