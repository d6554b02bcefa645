/**
 * Broker faults, on our own redis-server / nats-server on spare ports, reached through a proxy:
 * a restart (SIGKILL, start again), a pause (SIGSTOP for the outage, then SIGCONT) and a cut
 * link (every connection dropped and new ones refused for the outage) while a publisher publishes
 * every 20 ms and a subscriber follows. During the outage publishes must fail clearly (503
 * `broker_unavailable`), never be acknowledged and lost; after it, publishing and delivery must
 * resume (the time is measured), and the subscriber must never see a gap it was not told about.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { API_KEY, token } from '../support/hub.ts';
import { requireService } from '../support/services.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { startChildHub, type ChildHub } from './support/child-hub.ts';
import { BrokerProcess, OutageProxy, type BrokerKind } from './support/broker-process.ts';
import { recordFigures } from './support/figures.ts';

type Fault = 'restart' | 'pause' | 'cut';

/** How long the broker is gone. A pause lasts past the brokers' 5 s command timeout, so publishes must fail. */
const OUTAGE_MS: Record<Fault, number> = { restart: 2_000, pause: 6_500, cut: 2_000 };
const CHANNEL = 'fault:1';

interface Outcome {
  readonly sentAt: number;
  readonly ms: number;
  readonly status: number;
  readonly code?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

/**
 * A subscriber that resumes by itself when the hub ends its subscription (unsub push). Replies
 * and pushes are handled in one listener, in arrival order, so a push right behind a subscribe
 * answer is judged against the answer's position.
 */
class Follower {
  readonly received: Array<{ offset: number; epoch: string; at: number }> = [];
  told = 0;
  silentGaps = 0;
  #position: { offset: number; epoch: string } | undefined;
  #pendingId: number | undefined;
  #nextId = 1000;
  readonly client: WsTestClient;

  private constructor(client: WsTestClient) {
    this.client = client;
  }

  static async start(wsUrl: string): Promise<Follower> {
    const client = await WsTestClient.connect(wsUrl, await token({ sub: 'follower', channels: ['fault:*'] }));
    const follower = new Follower(client);
    const result = await client.ok('subscribe', { channel: CHANNEL });
    follower.#position = { offset: result.offset, epoch: result.epoch };
    client.socket.on('message', (data) => follower.#onMessage(JSON.parse(data.toString())));
    return follower;
  }

  #onMessage(m: any): void {
    if (m.push === 'pub') this.#take(m.pub);
    else if (m.push === 'unsub') {
      this.told++;
      this.#resubscribe();
    } else if (m.id !== undefined && m.id === this.#pendingId) {
      this.#pendingId = undefined;
      if (m.error !== undefined) {
        setTimeout(() => this.#resubscribe(), 200);
        return;
      }
      if (m.result.recovered === true) for (const p of m.result.publications) this.#take(p);
      else {
        this.told++;
        this.#position = { offset: m.result.offset, epoch: m.result.epoch };
      }
    }
  }

  #take(pub: { offset: number; epoch: string }): void {
    const p = this.#position;
    if (p !== undefined && (pub.epoch !== p.epoch || pub.offset !== p.offset + 1)) this.silentGaps++;
    this.#position = { offset: pub.offset, epoch: pub.epoch };
    this.received.push({ offset: pub.offset, epoch: pub.epoch, at: Date.now() });
  }

  #resubscribe(): void {
    if (this.client.closeCode !== undefined) return;
    this.#pendingId = this.#nextId++;
    this.client.socket.send(
      JSON.stringify({ id: this.#pendingId, method: 'subscribe', params: { channel: CHANNEL, since: this.#position } }),
    );
  }
}

async function publishOnce(url: string, n: number): Promise<Outcome> {
  const sentAt = Date.now();
  try {
    const r = await fetch(`${url}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: CHANNEL, data: { n } }),
      signal: AbortSignal.timeout(20_000),
    });
    const body = (await r.json()) as any;
    return {
      sentAt,
      ms: Date.now() - sentAt,
      status: r.status,
      code: body.error?.code,
      offset: body.offset,
      epoch: body.epoch,
    };
  } catch {
    return { sentAt, ms: Date.now() - sentAt, status: 0 };
  }
}

async function scenario(
  kind: BrokerKind,
  fault: Fault,
  cleanup: Array<() => Promise<void>>,
): Promise<Record<string, unknown>> {
  const broker = await BrokerProcess.start(kind);
  cleanup.push(() => broker.dispose());
  const proxy = new OutageProxy(broker.port);
  await proxy.listen();
  cleanup.push(() => proxy.close());
  const hub: ChildHub = await startChildHub({
    broker: `${kind}://127.0.0.1:${proxy.port}`,
    options: { historySize: 10_000 },
  });
  cleanup.push(() => hub.kill());
  const follower = await Follower.start(hub.wsUrl);
  const outcomes: Outcome[] = [];
  let running = true;
  const publisher = (async () => {
    for (let n = 1; running && n < 5_000; n++) {
      outcomes.push(await publishOnce(hub.url, n));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await new Promise((r) => setTimeout(r, 1_000));

  const faultAt = Date.now();
  if (fault === 'restart') await broker.kill();
  else if (fault === 'pause') broker.pause();
  else proxy.cut();
  await new Promise((r) => setTimeout(r, OUTAGE_MS[fault]));
  if (fault === 'restart') await broker.restart();
  else if (fault === 'pause') broker.resume();
  else proxy.restore();
  const restoredAt = Date.now();

  // Until publishing has worked again for a while (bounded: 60 s).
  const deadline = restoredAt + 60_000;
  while (Date.now() < deadline) {
    const okAfter = outcomes.filter((o) => o.sentAt >= restoredAt && o.status === 200);
    if (okAfter.length >= 30) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  running = false;
  await publisher;
  const acked = outcomes.filter((o) => o.status === 200);
  const lastAck = acked.at(-1);
  // Let the follower catch up to the last acknowledged publication.
  const catchUp = Date.now() + 20_000;
  while (
    Date.now() < catchUp &&
    !follower.received.some((r) => r.offset === lastAck?.offset && r.epoch === lastAck?.epoch)
  ) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const history = (await (
    await fetch(`${hub.url}/api/channels/${CHANNEL}/history?limit=10000`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    })
  ).json()) as { publications: Array<{ offset: number; epoch: string }>; epoch: string };
  const stored = new Set(history.publications.map((p) => `${p.epoch}/${p.offset}`));
  const lostAcked = acked.filter((o) => !stored.has(`${o.epoch}/${o.offset}`));
  const epochs = [...new Set(acked.map((o) => o.epoch))];
  const failed = outcomes.filter((o) => o.status !== 200);
  const failures: Record<string, number> = {};
  for (const o of failed)
    failures[`${o.status} ${o.code ?? ''}`.trim()] = (failures[`${o.status} ${o.code ?? ''}`.trim()] ?? 0) + 1;
  const firstAckAfter = acked.find((o) => o.sentAt >= restoredAt);
  const firstDeliveryAfter = follower.received.find(
    (r) =>
      r.at >= restoredAt && acked.some((a) => a.sentAt >= restoredAt && a.offset === r.offset && a.epoch === r.epoch),
  );
  const figures = {
    broker: kind,
    fault,
    outageMs: OUTAGE_MS[fault],
    published: outcomes.length,
    acked: acked.length,
    failures,
    slowestFailureMs: Math.max(0, ...failed.map((o) => o.ms)),
    publishOkAfterRestoreMs: firstAckAfter ? firstAckAfter.sentAt + firstAckAfter.ms - restoredAt : undefined,
    deliveryAfterRestoreMs: firstDeliveryAfter ? firstDeliveryAfter.at - restoredAt : undefined,
    epochs: epochs.length,
    ackedLost: lostAcked.length,
    ackedLostInOldEpoch: lostAcked.filter((o) => o.epoch !== history.epoch).length,
    followerReceived: follower.received.length,
    followerTold: follower.told,
    followerSilentGaps: follower.silentGaps,
    hubAlive: hub.exitStatus === undefined,
    faultToRestoreMs: restoredAt - faultAt,
  };
  follower.client.close();
  // Checks shared by every fault.
  assert.equal(hub.exitStatus, undefined, `the hub exited: ${hub.stderr()}`);
  assert.ok(
    failed.every((o) => o.status === 503 && o.code === 'broker_unavailable'),
    `failures: ${JSON.stringify(failures)}`,
  );
  assert.ok(firstAckAfter !== undefined, 'publishing resumed after the outage');
  assert.ok(firstDeliveryAfter !== undefined, 'delivery resumed after the outage');
  assert.equal(follower.silentGaps, 0, 'the follower saw a gap it was not told about');
  // Acknowledged means stored: only a broker that lost its storage may lose what it acknowledged,
  // and then the stream's epoch changes (everyone resuming is told recovered: false).
  if (kind === 'redis' && fault === 'restart') {
    assert.equal(
      lostAcked.length,
      figures.ackedLostInOldEpoch,
      'lost only what the restarted Redis lost with its old epoch',
    );
    assert.ok(epochs.length >= 2 && follower.told > 0, 'the epoch changed and the follower was told');
  } else {
    assert.deepEqual(lostAcked.slice(0, 5), [], 'acknowledged publications missing from history');
  }
  return figures;
}

for (const kind of ['redis', 'nats'] as const) {
  describe(`broker faults: ${kind}`, { concurrency: false }, () => {
    const cleanup: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
    });
    for (const fault of ['restart', 'pause', 'cut'] as const) {
      it(
        `${fault}: publishes fail with 503 broker_unavailable, nothing acknowledged is lost, delivery resumes`,
        { timeout: 180_000 },
        async (t) => {
          if (!(await requireService(t, kind === 'redis' ? 'redis-server' : 'nats-server'))) return;
          const figures = await scenario(kind, fault, cleanup);
          recordFigures(t, `broker-${kind}-${fault}`, figures);
        },
      );
    }
  });
}
