/**
 * Broker faults, on our own redis-server / nats-server on spare ports, reached through a proxy:
 * a restart (SIGKILL, start again), a pause (SIGSTOP for the outage, then SIGCONT) and a cut
 * link (every connection dropped and new ones refused for the outage) while a publisher publishes
 * every 20 ms and followers follow. During the outage publishes must fail clearly (503
 * `broker_unavailable`); after it, publishing and delivery must resume (the time is measured).
 *
 * What was acknowledged must survive unless the broker lost its storage, and then everyone must
 * be told. The Redis restart runs three ways: a durable Redis (AOF, fsync before every reply)
 * must lose nothing and keep the epoch; one without persistence loses everything (new epoch,
 * every follower told `recovered: false`); one that comes back from an older snapshot loses its
 * tail, which must not leave offsets of the old epoch naming two different publications.
 * Three live followers follow throughout; a fourth leaves right before the fault and resumes
 * from its position once the broker is back and has moved past it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { API_KEY, token } from '../support/hub.ts';
import { requireService } from '../support/services.ts';
import { WsTestClient } from '../support/ws-client.ts';
import { startChildHub, type ChildHub } from './support/child-hub.ts';
import { BrokerProcess, OutageProxy, type BrokerKind, type Persistence } from './support/broker-process.ts';
import { recordFigures } from './support/figures.ts';

type Fault = 'restart' | 'pause' | 'cut';

/** How long the broker is gone. A pause lasts past the brokers' 5 s command timeout, so publishes must fail. */
const OUTAGE_MS: Record<Fault, number> = { restart: 2_000, pause: 6_500, cut: 2_000 };
const CHANNEL = 'fault:1';
const LIVE_FOLLOWERS = 3;

interface Outcome {
  readonly n: number;
  readonly sentAt: number;
  readonly ms: number;
  readonly status: number;
  readonly code?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

interface Position {
  readonly offset: number;
  readonly epoch: string;
}

/**
 * A subscriber that resumes by itself when the hub ends its subscription (unsub push). Replies
 * and pushes are handled in one listener, in arrival order, so a push right behind a subscribe
 * answer is judged against the answer's position.
 */
class Follower {
  readonly received: Array<{ offset: number; epoch: string; n: number; at: number }> = [];
  /** Times the hub said this follower's position was lost (unsub push, or `recovered: false`). */
  told = 0;
  /** Resumes answered `recovered: false`. */
  notRecovered = 0;
  silentGaps = 0;
  #position: Position | undefined;
  #pendingId: number | undefined;
  #nextId = 1000;
  readonly client: WsTestClient;

  private constructor(client: WsTestClient) {
    this.client = client;
  }

  /** Subscribes from `since` (judged like any resume) or from the top. */
  static async start(wsUrl: string, since?: Position): Promise<Follower> {
    const client = await WsTestClient.connect(wsUrl, await token({ sub: 'follower', channels: ['fault:*'] }));
    const follower = new Follower(client);
    client.socket.on('message', (data) => follower.#onMessage(JSON.parse(data.toString())));
    if (since === undefined) {
      const result = await client.ok('subscribe', { channel: CHANNEL });
      follower.#position = { offset: result.offset, epoch: result.epoch };
    } else {
      follower.#position = since;
      follower.#resubscribe();
    }
    return follower;
  }

  get position(): Position | undefined {
    return this.#position;
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
        this.notRecovered++;
        this.#position = { offset: m.result.offset, epoch: m.result.epoch };
      }
    }
  }

  #take(pub: { offset: number; epoch: string; data: { n: number } }): void {
    const p = this.#position;
    if (p !== undefined && (pub.epoch !== p.epoch || pub.offset !== p.offset + 1)) this.silentGaps++;
    this.#position = { offset: pub.offset, epoch: pub.epoch };
    this.received.push({ offset: pub.offset, epoch: pub.epoch, n: pub.data.n, at: Date.now() });
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
      n,
      sentAt,
      ms: Date.now() - sentAt,
      status: r.status,
      code: body.error?.code,
      offset: body.offset,
      epoch: body.epoch,
    };
  } catch {
    return { n, sentAt, ms: Date.now() - sentAt, status: 0 };
  }
}

/** Pairs of acknowledged or received publications that carry one position but differ (a reused offset). */
function positionsReused(outcomes: readonly Outcome[], followers: readonly Follower[]): number {
  const named = new Map<string, number>();
  let reused = 0;
  const see = (epoch: string | undefined, offset: number | undefined, n: number): void => {
    const key = `${epoch}/${offset}`;
    const first = named.get(key);
    if (first === undefined) named.set(key, n);
    else if (first !== n) reused++;
  };
  for (const o of outcomes) if (o.status === 200) see(o.epoch, o.offset, o.n);
  for (const f of followers) for (const r of f.received) see(r.epoch, r.offset, r.n);
  return reused;
}

async function scenario(
  kind: BrokerKind,
  fault: Fault,
  persistence: Persistence,
  cleanup: Array<() => Promise<void>>,
  report: (figures: Record<string, unknown>) => void,
): Promise<void> {
  const broker = await BrokerProcess.start(kind, persistence);
  cleanup.push(() => broker.dispose());
  const proxy = new OutageProxy(broker.port);
  await proxy.listen();
  cleanup.push(() => proxy.close());
  const hub: ChildHub = await startChildHub({
    broker: `${kind}://127.0.0.1:${proxy.port}`,
    options: { historySize: 10_000 },
  });
  cleanup.push(() => hub.kill());
  const live: Follower[] = [];
  for (let i = 0; i < LIVE_FOLLOWERS; i++) live.push(await Follower.start(hub.wsUrl));
  const leaving = await Follower.start(hub.wsUrl);
  const outcomes: Outcome[] = [];
  let running = true;
  const publisher = (async () => {
    for (let n = 1; running && n < 5_000; n++) {
      outcomes.push(await publishOnce(hub.url, n));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await new Promise((r) => setTimeout(r, 1_000));
  // The snapshot Redis comes back with what it held here; the next 500 ms of acks are its lost tail.
  const snapshotFrom = Date.now();
  if (persistence === 'snapshot') await broker.snapshot();
  const snapshotTo = Date.now();
  await new Promise((r) => setTimeout(r, 500));

  leaving.client.close();
  const leftAt = leaving.position;
  const faultAt = Date.now();
  if (fault === 'restart') await broker.kill();
  else if (fault === 'pause') broker.pause();
  else proxy.cut();
  await new Promise((r) => setTimeout(r, OUTAGE_MS[fault]));
  if (fault === 'restart') await broker.restart();
  else if (fault === 'pause') broker.resume();
  else proxy.restore();
  const restoredAt = Date.now();

  // Until publishing has worked again for a while (bounded: 60 s), so the top has moved past the
  // position the leaving follower resumes from even when a restart took the stream back.
  const deadline = restoredAt + 60_000;
  while (Date.now() < deadline) {
    const okAfter = outcomes.filter((o) => o.sentAt >= restoredAt && o.status === 200);
    if (okAfter.length >= 40) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const returning = await Follower.start(hub.wsUrl, leftAt);
  await new Promise((r) => setTimeout(r, 200));
  running = false;
  await publisher;
  const followers = [...live, returning];
  const acked = outcomes.filter((o) => o.status === 200);
  const lastAck = acked.at(-1);
  // Let every follower catch up to the last acknowledged publication (received, or the top it was told).
  const caughtUp = (f: Follower): boolean =>
    f.position?.offset === lastAck?.offset && f.position?.epoch === lastAck?.epoch;
  const catchUp = Date.now() + 20_000;
  while (Date.now() < catchUp && !followers.every(caughtUp)) await new Promise((r) => setTimeout(r, 50));
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
  const firstDeliveryAfter = live[0]?.received.find(
    (r) =>
      r.at >= restoredAt && acked.some((a) => a.sentAt >= restoredAt && a.offset === r.offset && a.epoch === r.epoch),
  );
  // Acknowledged publications a follower never got although it was never told it lost its position.
  const missedUntold = followers.map((f) => {
    if (f.told > 0) return 0;
    const got = new Set(f.received.map((r) => r.n));
    if (f === returning) for (const r of leaving.received) got.add(r.n);
    return acked.filter((o) => !got.has(o.n)).length;
  });
  const reused = positionsReused(outcomes, [...followers, leaving]);
  const figures = {
    broker: kind,
    fault,
    persistence: kind === 'nats' ? 'file' : persistence,
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
    // Snapshot: acknowledged before the SAVE (Redis still had them; the new epoch dropped them)
    // and after it (Redis itself lost them).
    ...(persistence === 'snapshot' && fault === 'restart'
      ? {
          ackedBeforeSnapshot: acked.filter((o) => o.sentAt + o.ms <= snapshotFrom).length,
          ackedAfterSnapshot: acked.filter((o) => o.sentAt >= snapshotTo && o.sentAt < faultAt).length,
        }
      : {}),
    positionsReused: reused,
    followersTold: followers.map((f) => f.told),
    followersNotRecovered: followers.map((f) => f.notRecovered),
    followersReceived: followers.map((f) => f.received.length),
    missedUntold,
    silentGaps: followers.map((f) => f.silentGaps),
    hubAlive: hub.exitStatus === undefined,
    faultToRestoreMs: restoredAt - faultAt,
  };
  for (const f of followers) f.client.close();
  report(figures);
  // Checks shared by every fault.
  assert.equal(hub.exitStatus, undefined, `the hub exited: ${hub.stderr()}`);
  assert.ok(
    failed.every((o) => o.status === 503 && o.code === 'broker_unavailable'),
    `failures: ${JSON.stringify(failures)}`,
  );
  assert.ok(firstAckAfter !== undefined, 'publishing resumed after the outage');
  assert.ok(firstDeliveryAfter !== undefined, 'delivery resumed after the outage');
  assert.ok(
    followers.every(caughtUp),
    `every follower reached the last acknowledged position: ${JSON.stringify(figures)}`,
  );
  assert.deepEqual(figures.silentGaps, [0, 0, 0, 0], 'a follower saw a gap it was not told about');
  assert.equal(reused, 0, 'one position named two different publications (offsets reused in one epoch)');
  assert.deepEqual(missedUntold, [0, 0, 0, 0], 'a follower missed acknowledged publications without being told');
  if (kind === 'redis' && fault === 'restart' && persistence !== 'aof') {
    // Redis lost its storage (all of it, or the tail after its snapshot): what it acknowledged
    // since is gone, but only with the old epoch, and every follower, the ones connected and the
    // one resuming afterwards, is told `recovered: false`.
    assert.equal(
      lostAcked.length,
      figures.ackedLostInOldEpoch,
      'lost only what the restarted Redis lost with its old epoch',
    );
    assert.ok(epochs.length >= 2, 'the epoch changed');
    assert.deepEqual(
      followers.filter((f) => f.notRecovered === 0).length,
      0,
      'every follower was told recovered: false',
    );
  } else {
    // The broker kept its storage (Redis with an fsynced AOF, NATS's file store, or no restart):
    // nothing acknowledged is lost, the epoch stays, and everyone resumes without being told.
    assert.deepEqual(lostAcked.slice(0, 5), [], 'acknowledged publications missing from history');
    assert.equal(epochs.length, 1, 'the epoch changed although nothing was lost');
    assert.deepEqual(figures.followersTold, [0, 0, 0, 0], 'a follower was told it lost its position');
  }
}

const CASES: ReadonlyArray<{ kind: BrokerKind; fault: Fault; persistence: Persistence }> = [
  { kind: 'redis', fault: 'restart', persistence: 'aof' },
  { kind: 'redis', fault: 'restart', persistence: 'snapshot' },
  { kind: 'redis', fault: 'restart', persistence: 'none' },
  { kind: 'redis', fault: 'pause', persistence: 'none' },
  { kind: 'redis', fault: 'cut', persistence: 'none' },
  { kind: 'nats', fault: 'restart', persistence: 'none' },
  { kind: 'nats', fault: 'pause', persistence: 'none' },
  { kind: 'nats', fault: 'cut', persistence: 'none' },
];

for (const kind of ['redis', 'nats'] as const) {
  describe(`broker faults: ${kind}`, { concurrency: false }, () => {
    const cleanup: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
    });
    for (const { fault, persistence } of CASES.filter((c) => c.kind === kind)) {
      const restartOf = kind === 'redis' && fault === 'restart' ? persistence : undefined;
      const title =
        restartOf === undefined
          ? `${fault}: publishes fail with 503 broker_unavailable, nothing acknowledged is lost, delivery resumes`
          : restartOf === 'aof'
            ? 'restart, AOF fsynced on every write: nothing acknowledged is lost, the epoch stays'
            : `restart, ${restartOf === 'none' ? 'no persistence' : 'back from an older snapshot'}: a new epoch, every follower told recovered: false`;
      it(title, { timeout: 180_000 }, async (t) => {
        if (!(await requireService(t, kind === 'redis' ? 'redis-server' : 'nats-server'))) return;
        const name = `broker-${kind}-${fault}${restartOf === undefined ? '' : `-${restartOf}`}`;
        await scenario(kind, fault, persistence, cleanup, (figures) => recordFigures(t, name, figures));
      });
    }
  });
}
