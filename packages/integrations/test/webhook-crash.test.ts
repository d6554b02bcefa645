/**
 * Webhooks survive a node crash, on the Redis and the NATS broker: two real `herald serve`
 * processes share the broker (and so the webhook outbox). Node A accepts client publications
 * while the backend answers 503, so their events pile up in the outbox; the backend then holds
 * requests until both nodes have every request slot busy, node A is SIGKILLed with requests in
 * flight, and the backend comes back with 200. Every event node A accepted must arrive (maybe
 * twice: dedupe by id), delivered by node B, including those A was sending when it died.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect } from 'nats';
import {
  HubNode,
  buildOnce,
  deleteNatsNamespace,
  deleteRedisPrefix,
  uniquePrefix,
  until,
} from '../../../test/cluster/support.ts';
import { token } from '../../../test/support/hub.ts';
import { requireService } from '../../../test/support/services.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';
import { WebhookReceiver } from './support/receivers.ts';

const SECRET = 'whsec-crash-0123456789abcdef';
const EVENTS = 40;
const CONCURRENCY = 4;

for (const kind of ['redis', 'nats'] as const) {
  describe(`webhooks survive a node crash (${kind} broker)`, () => {
    const prefix = uniquePrefix();
    const server = kind === 'redis' ? 'redis://127.0.0.1:6379' : 'nats://127.0.0.1:4222';
    const nodes: HubNode[] = [];
    let receiver: WebhookReceiver | undefined;
    let release = (): void => undefined;
    after(async () => {
      release();
      for (const node of nodes) await node.stop();
      await receiver?.close();
      if (nodes.length === 0) return;
      if (kind === 'redis') {
        await deleteRedisPrefix(server, prefix);
        await deleteRedisPrefix(server, `herald:{${prefix}}`);
      } else {
        await deleteNatsNamespace(server, prefix);
        const nc = await connect({ servers: server });
        await (await nc.jetstreamManager()).streams.delete(`herald_webhooks_${prefix}`).catch(() => undefined);
        await nc.close();
      }
    });

    it('every event node A accepted is delivered by node B after A is SIGKILLed', async (t) => {
      if (!(await requireService(t, kind))) return;
      await buildOnce();
      const rx = await new WebhookReceiver().start();
      receiver = rx;
      rx.respond = () => 503;
      const integrations = {
        webhooks: {
          url: rx.url,
          secret: SECRET,
          events: ['publication'],
          timeout: 5,
          // A held request must still be in flight when A dies: above timeout, as required.
          claimIdle: 6,
          retryBase: 0.2,
          retryMax: 1,
          maxAttempts: 100,
          concurrency: CONCURRENCY,
        },
      };
      const env = { HERALD_INTEGRATIONS: JSON.stringify(integrations) };
      const broker = `${server}?prefix=${prefix}`;
      const a = await HubNode.start('A', { broker, env });
      nodes.push(a);
      const b = await HubNode.start('B', { broker, env });
      nodes.push(b);

      // Client publications on node A: each becomes a webhook event in A's dispatcher.
      const client = await WsTestClient.connect(a.wsUrl, await token({ sub: 'crash-publisher' }));
      const channel = `room:${prefix}`;
      for (let n = 0; n < EVENTS; n++) await client.ok('publish', { channel, data: { n } });
      client.close();
      const seen = (): Set<number> => new Set(rx.received.map((r) => r.event.data.publication.data.n as number));
      // Each one reached the backend (and got a 503): A's outbox accepted all of them.
      await until(
        () => seen().size === EVENTS,
        () => `every event tried once (${seen().size}/${EVENTS})`,
      );

      // The backend stops answering: retries pile up in flight until both nodes have every slot busy.
      rx.gate = new Promise<void>((resolve) => (release = resolve));
      await until(
        () => rx.held >= 2 * CONCURRENCY,
        () => `both nodes with ${CONCURRENCY} requests held (${rx.held})`,
      );
      a.kill('SIGKILL');
      await until(() => !a.alive, 'node A to die');
      const receivedBeforeUp = rx.received.length;
      const up = Date.now();
      rx.respond = () => 200;
      rx.gate = undefined;
      release();

      const delivered = (): Set<string> => new Set(rx.accepted('publication').map((e) => e.id as string));
      await until(
        () => delivered().size === EVENTS,
        () => `every event delivered (${delivered().size}/${EVENTS})`,
        60_000,
      );
      const allDeliveredMs = Date.now() - up;

      // Every event, by its publication number: none missing.
      const numbers = new Set(rx.accepted('publication').map((e) => e.data.publication.data.n as number));
      assert.deepEqual(
        [...numbers].sort((x, y) => x - y),
        Array.from({ length: EVENTS }, (_, n) => n),
      );
      // The requests node A had in flight when it died never got an answer; their events came through B.
      const cut = rx.received.slice(receivedBeforeUp).filter((r) => r.status === 499);
      assert.ok(cut.length >= CONCURRENCY, `node A's ${CONCURRENCY} held requests were cut (${cut.length})`);
      for (const r of cut) assert.ok(delivered().has(r.event.id), `event ${r.event.id} cut by the crash was delivered`);
      // One id per event: a redelivery carries the id of the first attempt.
      assert.equal(new Set(rx.received.map((r) => r.event.id)).size, EVENTS);
      const accepted = rx.accepted('publication');
      const metrics = await fetch(`${b.url}/metrics`).then((r) => r.text());
      const byB = Number(/^herald_webhook_delivered_total (\d+)/m.exec(metrics)?.[1]);
      assert.equal(byB, accepted.length, 'node B delivered every one of them');
      const cutAttempts = cut.map((r) => Number(r.headers['herald-attempt']));
      const redeliveredAttempts = accepted
        .filter((e) => cut.some((r) => r.event.id === e.id))
        .map((e) =>
          Number(rx.received.find((r) => r.event.id === e.id && r.status === 200)?.headers['herald-attempt']),
        );
      t.diagnostic(
        JSON.stringify({
          broker: kind,
          events: EVENTS,
          deliveries: accepted.length,
          duplicates: accepted.length - delivered().size,
          requestsCutByCrash: cut.length,
          attemptsCut: cutAttempts,
          attemptsWhenRedelivered: redeliveredAttempts,
          claimIdleMs: 6000,
          msFromBackendUpToAllDelivered: allDeliveredMs,
        }),
      );
    });
  });
}
