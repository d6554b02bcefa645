/**
 * The multi-node scenarios, written once and run on each broker: three `herald serve` processes
 * on one Redis or NATS, real WebSocket clients and HTTP publishers spread over all of them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API_KEY, token } from '../support/hub.ts';
import { SERVICES, REQUIRE_SERVICES, requireService } from '../support/services.ts';
import {
  HubNode,
  Publisher,
  ResumingClient,
  ServiceProcess,
  api,
  buildOnce,
  deleteNatsNamespace,
  deleteRedisPrefix,
  openAll,
  roundRobin,
  sleep,
  stragglers,
  uniquePrefix,
  until,
  type Acked,
} from './support.ts';

export type BrokerKind = 'redis' | 'nats';

const SHARED_URL: Record<BrokerKind, string> = { redis: 'redis://127.0.0.1:6379', nats: 'nats://127.0.0.1:4222' };
const PRESENCE_TTL_S = 2;

function brokerUrl(kind: BrokerKind, base: string, prefix: string): string {
  return kind === 'redis' ? `${base}/0?prefix=${prefix}` : `${base}?prefix=${prefix}`;
}

/** Publishes `count` publications spread over `channels`, `parallel` at a time. */
async function publishMany(
  publisher: Publisher,
  channels: readonly string[],
  count: number,
  parallel = 4,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        await publisher.publish(channels[i % channels.length] as string);
      }
    }),
  );
}

async function tops(url: string, channels: readonly string[]): Promise<Map<string, { offset: number; epoch: string }>> {
  const result = new Map<string, { offset: number; epoch: string }>();
  for (const channel of channels) {
    const answer = await api(url, `/api/channels/${encodeURIComponent(channel)}/history?limit=0`);
    result.set(channel, { offset: answer.offset, epoch: answer.epoch });
  }
  return result;
}

function byChannel(acked: readonly Acked[], channel: string): Acked[] {
  return acked.filter((a) => a.channel === channel).sort((x, y) => x.offset - y.offset);
}

function assertClean(clients: readonly ResumingClient[]): void {
  const broken = clients.filter((c) => c.violations.length > 0);
  assert.deepEqual(
    broken.slice(0, 3).map((c) => c.violations.slice(0, 3)),
    [],
    `${broken.length} clients saw a gap, a duplicate or a silent epoch change`,
  );
}

export function clusterScenarios(kind: BrokerKind): void {
  describe(`three hub processes on ${kind}`, { concurrency: false }, () => {
    const prefix = uniquePrefix();
    const url = brokerUrl(kind, SHARED_URL[kind], prefix);
    let nodes: HubNode[] = [];
    let jwt = '';

    before(async () => {
      if (!(await SERVICES[kind].check())) {
        if (REQUIRE_SERVICES) throw new Error(`needs ${SERVICES[kind].hint} (HERALD_REQUIRE_SERVICES=1)`);
        return;
      }
      await buildOnce();
      nodes = await Promise.all(
        ['A', 'B', 'C'].map((name) => HubNode.start(name, { broker: url, presenceTtlSeconds: PRESENCE_TTL_S })),
      );
      jwt = await token({ sub: 'watcher', channels: ['*'] });
    });

    after(async () => {
      for (const node of nodes) node.kill('SIGKILL');
      if (await SERVICES[kind].check()) {
        await (kind === 'redis'
          ? deleteRedisPrefix(SHARED_URL.redis, prefix)
          : deleteNatsNamespace(SHARED_URL.nats, prefix));
      }
    });

    it(
      'every subscriber, on any node, receives every publication from any node once and in order',
      { timeout: 60_000 },
      async (t) => {
        if (!(await requireService(t, kind))) return;
        const channel = `${prefix}-fanout`;
        const clients = Array.from({ length: 30 }, () => new ResumingClient(channel, jwt, roundRobin(nodes)));
        await openAll(clients, (i) => (nodes[i % 3] as HubNode).wsUrl);
        const publisher = new Publisher(roundRobin(nodes, false));
        await publishMany(publisher, [channel], 150, 3);
        const acked = byChannel(publisher.acked, channel);
        assert.deepEqual(
          acked.map((a) => a.offset),
          Array.from({ length: 150 }, (_, i) => i + 1),
        );
        await until(() => clients.every((c) => c.position?.offset === 150), 'every subscriber to have all 150');
        assertClean(clients);
        const expected = acked.map((a) => ({ offset: a.offset, epoch: a.epoch, n: a.n }));
        for (const client of clients) {
          assert.deepEqual(
            client.received.map((r) => ({ offset: r.offset, epoch: r.epoch, n: r.data.n })),
            expected,
          );
          assert.equal(client.told, 0);
        }
        for (const client of clients) client.close();
      },
    );

    it('a subscriber moved from node A to node C mid-stream resumes without a gap', { timeout: 60_000 }, async (t) => {
      if (!(await requireService(t, kind))) return;
      const [a, b, c] = nodes as [HubNode, HubNode, HubNode];
      const channel = `${prefix}-move`;
      const client = new ResumingClient(channel, jwt, () => a.wsUrl);
      await client.open(a.wsUrl);
      const publisher = new Publisher(roundRobin([b, c], false));
      const publishing = publishMany(publisher, [channel], 120, 2);
      await until(() => (client.position?.offset ?? 0) >= 40, 'forty publications on node A');
      await client.moveTo(c.wsUrl);
      assert.equal(client.url, c.wsUrl);
      await publishing;
      await until(() => client.position?.offset === 120, 'all 120 on node C');
      assertClean([client]);
      assert.deepEqual(
        client.received.map((r) => r.offset),
        Array.from({ length: 120 }, (_, i) => i + 1),
      );
      assert.equal(client.resumes, 1);
      assert.equal(client.told, 0);
      client.close();
    });

    it(
      'long-poll and SSE cursors from one node resume on any other (nothing sticky)',
      { timeout: 60_000 },
      async (t) => {
        if (!(await requireService(t, kind))) return;
        const [a, b, c] = nodes as [HubNode, HubNode, HubNode];
        const channel = `${prefix}-cursor`;
        const query = `channel=${encodeURIComponent(channel)}&token=${jwt}`;
        const first = await getJson(`${a.url}/poll?${query}&timeout=0`);
        const publisher = new Publisher(() => b.url);
        for (let i = 0; i < 5; i++) await publisher.publish(channel);
        const second = await getJson(`${c.url}/poll?${query}&timeout=5&cursor=${encodeURIComponent(first.cursor)}`);
        assert.deepEqual(
          second.publications.map((p: { offset: number }) => p.offset),
          [1, 2, 3, 4, 5],
        );
        assert.equal(second.channels[channel].recovered, true);
        for (let i = 0; i < 3; i++) await new Publisher(() => a.url).publish(channel);
        const events = await sseEvents(`${b.url}/sse?${query}&lastEventId=${encodeURIComponent(second.cursor)}`, 4);
        assert.equal(events[0]?.event, 'herald.connected');
        assert.equal(JSON.parse(events[0]?.data ?? '{}').channels[channel].recovered, true);
        assert.deepEqual(
          events.slice(1).map((e) => JSON.parse(e.data).offset),
          [6, 7, 8],
        );
      },
    );

    it(
      '1,000 clients of a killed node resume on the others with nothing lost, and leave presence',
      { timeout: 120_000 },
      async (t) => {
        if (!(await requireService(t, kind))) return;
        const [a, b, c] = nodes as [HubNode, HubNode, HubNode];
        const channels = Array.from({ length: 10 }, (_, i) => `${prefix}-kill:${i}`);
        const survivors = roundRobin([a, b]);
        const victims = Array.from(
          { length: 1000 },
          (_, i) => new ResumingClient(channels[i % 10] as string, jwt, survivors),
        );
        const observers = Array.from(
          { length: 20 },
          (_, i) => new ResumingClient(channels[i % 10] as string, jwt, survivors),
        );
        await openAll(victims, () => c.wsUrl);
        await openAll(observers, (i) => (i % 2 ? a : b).wsUrl);
        const victimIds = new Set(victims.map((v) => v.clientIds[0]));
        const listed = await api(a.url, `/api/channels/${encodeURIComponent(channels[0] as string)}/presence`);
        assert.equal(
          listed.clients.filter((client: { clientId: string }) => victimIds.has(client.clientId)).length,
          100,
          'node A lists the clients of node C',
        );

        const publisher = new Publisher(roundRobin([a, b], false));
        const publishing = publishMany(publisher, channels, 300, 4);
        await until(() => publisher.acked.length >= 100, 'a third of the publications');
        c.kill('SIGKILL');
        await publishing;
        const final = await tops(a.url, channels);
        const caughtUp = (v: ResumingClient): boolean => v.position?.offset === final.get(v.channel)?.offset;
        await until(
          () => [...victims, ...observers].every(caughtUp),
          () => `every client to catch up: ${stragglers([...victims, ...observers], caughtUp)}`,
          60_000,
        );
        assertClean([...victims, ...observers]);
        for (const v of victims) {
          assert.ok(v.connections >= 2, 'reconnected');
          assert.equal(v.told, 0, 'resumed, not told to reload');
          assert.ok(v.url !== c.wsUrl);
        }
        // Everything published after a client subscribed reached it: its offsets are contiguous
        // (checked on arrival) and end at the top, so nothing was lost.
        for (const channel of channels) {
          const last = byChannel(publisher.acked, channel).at(-1);
          assert.equal(final.get(channel)?.offset, last?.offset);
        }

        // Node C's clients leave presence once its entries expire (HERALD_PRESENCE_TTL); the same
        // users, reconnected elsewhere, are listed under their new connections.
        await until(
          async () => {
            for (const channel of channels) {
              const answer = await api(a.url, `/api/channels/${encodeURIComponent(channel)}/presence`);
              if (answer.clients.some((client: { clientId: string }) => victimIds.has(client.clientId))) return false;
            }
            return true;
          },
          'the killed node’s presence entries to expire',
          PRESENCE_TTL_S * 1000 * 5 + 10_000,
          250,
        );
        const now = await api(b.url, `/api/channels/${encodeURIComponent(channels[3] as string)}/presence`);
        const current = new Set(now.clients.map((client: { clientId: string }) => client.clientId));
        for (const v of victims.filter((x) => x.channel === channels[3])) assert.ok(current.has(v.clientIds.at(-1)));
        for (const client of [...victims, ...observers]) client.close();
      },
    );
  });
}

/**
 * The broker server itself restarts under load (our own instance on a spare port): the hubs
 * survive, `/readyz` answers 503 during the outage and 200 after, and every client ends either
 * with everything or told `recovered: false`, never with a silent gap.
 */
export function brokerRestartScenario(kind: BrokerKind): void {
  describe(`${kind} server restart under load`, () => {
    let service: ServiceProcess | undefined;
    let nodes: HubNode[] = [];

    after(async () => {
      for (const node of nodes) node.kill('SIGKILL');
      await service?.dispose();
    });

    it(
      'hubs stay up, go unready and back, and no client is left with a silent gap',
      { timeout: 120_000 },
      async (t) => {
        if (!(await requireService(t, kind === 'redis' ? 'redis-server' : 'nats-server'))) return;
        await buildOnce();
        service = kind === 'redis' ? await ServiceProcess.redis() : await ServiceProcess.nats();
        const url = `${kind}://127.0.0.1:${service.port}`;
        nodes = await Promise.all(
          ['A', 'B'].map((name) => HubNode.start(name, { broker: url, presenceTtlSeconds: 2 })),
        );
        const jwt = await token({ sub: 'watcher', channels: ['*'] });
        const channels = Array.from({ length: 4 }, (_, i) => `restart:${i}`);
        const clients = Array.from(
          { length: 40 },
          (_, i) => new ResumingClient(channels[i % 4] as string, jwt, roundRobin(nodes)),
        );
        await openAll(clients, (i) => (nodes[i % 2] as HubNode).wsUrl);

        const publisher = new Publisher(roundRobin(nodes, false));
        let stop = false;
        const load = Promise.all(
          [0, 1].map(async (lane) => {
            for (let i = 0; !stop && i < 2_000; i++) {
              await publisher.publish(channels[(i * 2 + lane) % 4] as string);
              await sleep(5);
            }
          }),
        );
        await until(() => publisher.acked.length >= 60, 'load before the restart');
        await service.kill();
        await until(
          async () => (await Promise.all(nodes.map((n) => n.readyStatus()))).every((s) => s === 503),
          '/readyz 503 on every node',
          20_000,
        );
        // Meanwhile a publish is refused, not acknowledged and lost.
        const refused = await fetch(`${nodes[0]?.url}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel: channels[0], data: 'during the outage' }),
        });
        assert.equal(refused.status, 503);
        assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'broker_unavailable');
        await sleep(500);
        await service.start();
        await until(
          async () => (await Promise.all(nodes.map((n) => n.readyStatus()))).every((s) => s === 200),
          '/readyz 200 again',
          30_000,
        );
        const before = publisher.acked.length;
        await until(() => publisher.acked.length >= before + 60, 'load after the restart', 30_000);
        stop = true;
        await load;

        for (const node of nodes) assert.ok(node.alive, `${node.name} is still running:\n${node.output}`);
        const final = await tops(nodes[0]?.url as string, channels);
        const atTop = (c: ResumingClient): boolean =>
          c.subscribed &&
          c.position?.offset === final.get(c.channel)?.offset &&
          c.position?.epoch === final.get(c.channel)?.epoch;
        await until(
          () => clients.every(atTop),
          () => `every client to reach its channel’s top: ${stragglers(clients, atTop)}`,
          30_000,
        );
        assertClean(clients);
        for (const client of clients) {
          if (client.told > 0) continue; // told `recovered: false`: it knows to reload
          // Never told: then it has every acknowledged publication of its channel, in order.
          const expected = byChannel(publisher.acked, client.channel).filter((a) => a.epoch === client.position?.epoch);
          const got = new Set(client.received.map((r) => `${r.epoch}/${r.offset}`));
          for (const a of expected) assert.ok(got.has(`${a.epoch}/${a.offset}`), `missing ${a.offset}`);
        }
        t.diagnostic(
          `${clients.filter((c) => c.told > 0).length} of ${clients.length} clients were told recovered:false; ` +
            `${publisher.failures} publish attempts failed during the outage`,
        );
        for (const client of clients) client.close();
      },
    );
  });
}

/** The first `count` events of an SSE stream (parsed minimally), then the stream is closed. */
async function sseEvents(url: string, count: number): Promise<{ event: string; data: string }[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  const events: { event: string; data: string }[] = [];
  try {
    const response = await fetch(url, { signal: controller.signal });
    assert.equal(response.status, 200);
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data !== '') events.push({ event, data });
      }
      if (events.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

/** A GET without the API key (client endpoints take the token from the query). */
async function getJson(url: string): Promise<any> {
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return response.json();
}
