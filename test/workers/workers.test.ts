/**
 * `herald serve --workers 2` on the embedded broker, with real clients (`ws`): every guarantee
 * holds across worker processes. Clients are spread over the workers by the cluster's round robin, so each case opens
 * several connections and publications, which land on both workers.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  Herald,
  Ws,
  api,
  killAll,
  metric,
  metrics,
  mint,
  offsets,
  publish,
  range,
  rawGet,
  uniqueChannel,
  until,
} from '../acceptance/support.ts';

after(killAll);

/** `count` WebSocket clients, connected and subscribed to `channel`. */
async function clients(hub: Herald, channel: string, count: number, sub = 'alice', joinLeave = false): Promise<Ws[]> {
  const token = await mint({ sub, channels: ['*'], publish: ['*'] });
  const all: Ws[] = [];
  for (let i = 0; i < count; i++) {
    const ws = await Ws.connect(hub.wsUrl, token);
    await ws.ok('subscribe', { channel, ...(joinLeave ? { joinLeave: true } : {}) });
    all.push(ws);
  }
  return all;
}

describe('herald serve --workers 2 (embedded broker shared by the workers)', () => {
  it('offsets are one stream across workers: publications from both reach every client in order', async () => {
    const hub = await Herald.start({ HERALD_WORKERS: '2' });
    const channel = uniqueChannel('wk');
    const subscribers = await clients(hub, channel, 6);
    // Publications arrive on both workers (HTTP connections are spread too) and by clients.
    const publisher = (await clients(hub, uniqueChannel('other'), 1))[0] as Ws;
    for (let i = 1; i <= 20; i++) {
      if (i % 2 === 0) await publish(hub, channel, { i });
      else await publisher.ok('publish', { channel, data: { i } });
    }
    for (const ws of subscribers) await ws.waitFor(() => ws.pubs(channel).length === 20, '20 publications');
    for (const ws of subscribers) assert.deepEqual(offsets(ws.pubs(channel)), range(1, 20));
    await hub.stop();
    assert.equal(hub.exitCode, 0);
  });

  it('a client resumes on whichever worker it lands, gapless, from history kept by the primary', async () => {
    const hub = await Herald.start({ HERALD_WORKERS: '2' });
    const channel = uniqueChannel('wk');
    const token = await mint({ channels: ['*'] });
    for (let round = 0; round < 6; round++) {
      const ws = await Ws.connect(hub.wsUrl, token);
      const first = await ws.ok('subscribe', { channel });
      await publish(hub, channel, { round, part: 1 });
      await ws.waitFor(() => ws.pubs(channel).length === 1, 'the live publication');
      const seen = ws.pubs(channel)[0];
      ws.end();
      // Missed while away, then resumed on a new connection (often on the other worker).
      for (let i = 0; i < 3; i++) await publish(hub, channel, { round, missed: i });
      const again = await Ws.connect(hub.wsUrl, token);
      const resumed = await again.ok('subscribe', { channel, since: { offset: seen.offset, epoch: seen.epoch } });
      assert.equal(resumed.recovered, true);
      assert.deepEqual(offsets(resumed.publications), range(seen.offset + 1, seen.offset + 3));
      // Live pushes continue right after the replay, whichever worker published.
      await publish(hub, channel, { round, part: 2 });
      await again.waitFor(() => again.pubs(channel).length === 1, 'the next live publication');
      assert.equal(again.pubs(channel)[0].offset, seen.offset + 4);
      assert.equal(first.epoch ?? seen.epoch, seen.epoch);
      again.end();
    }
    await hub.stop();
  });

  it('presence and join/leave span the workers; idempotency keys too', async () => {
    const hub = await Herald.start({ HERALD_WORKERS: '2' });
    const channel = uniqueChannel('wk');
    const watcher = (await clients(hub, channel, 1, 'watcher', true))[0] as Ws;
    const members: Ws[] = [];
    for (let i = 0; i < 6; i++) members.push(...(await clients(hub, channel, 1, `member-${i}`)));
    const listed = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/presence`);
    assert.equal(listed.status, 200, listed.text);
    const users = new Set((listed.json.clients as { userId: string }[]).map((c) => c.userId));
    for (let i = 0; i < 6; i++) assert.ok(users.has(`member-${i}`), `member-${i} in presence`);
    members[0]?.end();
    await watcher.waitFor(
      () => watcher.pushes('leave').some((p) => p.client?.userId === 'member-0'),
      'the leave of member-0',
    );
    // The same key on both workers (six requests spread by the kernel) is stored once.
    const answers = await Promise.all(
      range(1, 6).map(() => publish(hub, channel, { once: true }, { idempotencyKey: 'k-1' })),
    );
    assert.equal(new Set(answers.map((a) => a.offset)).size, 1);
    await watcher.waitFor(() => watcher.pubs(channel).length >= 1, 'the publication');
    assert.equal(watcher.pubs(channel).length, 1);
    const samples = await metrics(hub);
    assert.equal(metric(samples, 'herald_connections', { transport: 'websocket' }), 6, 'summed over workers');
    assert.equal(metric(samples, 'herald_broker_up'), 1);
    await hub.stop();
  });

  it('admission limits count the machine, not each worker: per address and per user', async () => {
    // Per worker, four connections of one address would pass a cap of 3 (two on each worker).
    const hub = await Herald.start({
      HERALD_WORKERS: '2',
      HERALD_MAX_CONNECTIONS_PER_IP: '3',
      HERALD_MAX_CONNECTIONS_PER_USER: '2',
    });
    const ada = await mint({ sub: 'ada', channels: ['*'] });
    const held = [await Ws.connect(hub.wsUrl, ada), await Ws.connect(hub.wsUrl, ada)];
    // The user's third connection: admitted by address (3 of 3), refused by the per-user cap of 2
    // counted over both workers, then closed, which gives its address slot back.
    const third = await Ws.open(hub.wsUrl);
    const refused = await third.call('connect', { token: ada });
    assert.equal(refused.error?.code, 'rate_limited', JSON.stringify(refused));
    await third.closedWithin(5_000);
    held.push(await Ws.connect(hub.wsUrl, await mint({ sub: 'bob', channels: ['*'] })));
    // The address holds 3 connections, spread over both workers: a fourth is refused before the
    // upgrade (WebSocket) or the stream (SSE), whichever worker it reaches.
    for (let i = 0; i < 3; i++) {
      await assert.rejects(Ws.open(hub.wsUrl), (e: { status?: number }) => e.status === 429);
      const sse = await rawGet(hub.port, `/sse?channel=${uniqueChannel('adm')}`, {});
      assert.equal(sse.status, 429, sse.body);
    }
    // One closes: its slot is free again for the machine.
    held[0]?.end();
    await held[0]?.closed;
    await until(async () => {
      try {
        held.push(await Ws.connect(hub.wsUrl, await mint({ sub: 'cy' })));
        return true;
      } catch {
        return false; // the release may still be on its way to the primary
      }
    }, 'a connection admitted after one closed');
    await assert.rejects(Ws.open(hub.wsUrl), (e: { status?: number }) => e.status === 429);
    await hub.stop();
  });

  it('a worker that dies: its clients leave presence at once, another worker takes its place', async () => {
    const hub = await Herald.start({ HERALD_WORKERS: '2' });
    const channel = uniqueChannel('wk');
    const watcher = (await clients(hub, channel, 1, 'watcher', true))[0] as Ws;
    const members: Ws[] = [];
    for (let i = 0; i < 6; i++) members.push(...(await clients(hub, channel, 1, `member-${i}`)));
    // Node names carry the worker's pid: find the worker the watcher is not on.
    const listed = await api(hub, 'GET', `/api/connections?channel=${encodeURIComponent(channel)}`);
    const connections = listed.json.connections as { userId: string; node: string }[];
    const watcherNode = connections.find((c) => c.userId === 'watcher')?.node;
    const victims = connections.filter((c) => c.node !== watcherNode);
    assert.ok(victims.length > 0, 'the round robin put members on both workers');
    const victimNode = victims[0]?.node as string;
    const pid = Number(victimNode.split(':').at(-2));
    assert.ok(Number.isInteger(pid) && pid !== hub.process.pid, victimNode);
    process.kill(pid, 'SIGKILL');

    // Its members' sockets end; the watcher hears each of them leave, sent by the primary.
    const gone = new Set(victims.map((v) => v.userId));
    for (const user of gone)
      await watcher.waitFor(
        () => watcher.pushes('leave').some((p) => p.client?.userId === user),
        `the leave of ${user}`,
      );
    const present = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/presence`);
    const users = new Set((present.json.clients as { userId: string }[]).map((c) => c.userId));
    for (const user of gone) assert.equal(users.has(user), false, `${user} left presence`);
    assert.equal(users.has('watcher'), true);

    // A new worker replaces it: two nodes again, and every new connection is served.
    await until(async () => {
      const info = await api(hub, 'GET', '/api/info');
      const nodes = (info.json.nodes as { node: string }[]).map((n) => n.node);
      return nodes.length === 2 && !nodes.includes(victimNode);
    }, 'a replacement worker');
    const late = await clients(hub, channel, 4, 'late');
    await publish(hub, channel, { after: 'replacement' });
    for (const ws of [watcher, ...late]) await ws.waitFor(() => ws.pubs(channel).length === 1, 'the publication');
    await hub.stop();
    assert.equal(hub.exitCode, 0);
  });

  it('SIGTERM: every worker drains its clients (1001) and the command exits 0', async () => {
    const hub = await Herald.start({ HERALD_WORKERS: '2' });
    const channel = uniqueChannel('wk');
    const all = await clients(hub, channel, 8);
    const samples = await metrics(hub);
    assert.equal(metric(samples, 'herald_connections', { transport: 'websocket' }), 8);
    hub.process.kill('SIGTERM');
    const closes = await Promise.all(all.map((ws) => ws.closedWithin(20_000)));
    for (const close of closes) assert.equal(close.code, 1001);
    assert.equal(await hub.exited, 0);
  });
});
