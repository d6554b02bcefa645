/**
 * Web Push for offline users, end to end: a real hub, the real routes, web-push's encryption and
 * VAPID, and a local push service that decrypts every message (RFC 8291) and verifies the VAPID
 * JWT (RFC 8292). Run with the memory store, the Redis store and the NATS KV store; with the
 * shared ones, a second hub node on the same store too.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { pushSubscriptionId, startIntegrations, type Integrations } from '../src/index.ts';
import { api, publish, startHub, token, until, type TestHub } from '../../../test/support/hub.ts';
import { requireService } from '../../../test/support/services.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';
import { deleteNatsBuckets } from './support/nats-buckets.ts';
import { PushService } from './support/receivers.ts';

const RUN = randomUUID().slice(0, 8);

/** Polls an async condition every 10 ms; rejects after 5 s naming `what`. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const SUBJECT = 'mailto:ops@example.com';

const SHARED_STATE = { redis: 'redis://127.0.0.1:6379', nats: 'nats://127.0.0.1:4222' } as const;

for (const storeKind of ['memory', 'redis', 'nats'] as const) {
  describe(`web push (${storeKind} store)`, () => {
    let hub: TestHub;
    let integrations: Integrations;
    let pushService: PushService;
    let skip = false;
    const namespace = `t${RUN}${storeKind}`;
    /** The section of every node: the shared store follows the registry. */
    const section = {
      ...(storeKind === 'memory' ? {} : { registry: SHARED_STATE[storeKind], namespace }),
      sweepInterval: 0.05,
      push: {
        vapid: { subject: SUBJECT },
        allowInsecureEndpoints: true,
        endpointHosts: ['127.0.0.1'],
        rateLimit: { limit: 3, window: 3600 },
        userChannels: ['user:{userId}', 'inbox:{userId}:*'],
      },
    };
    /** False (the test skips, or fails with HERALD_REQUIRE_SERVICES=1) when the store's server is missing. */
    const ready = async (t: TestContext): Promise<boolean> => storeKind === 'memory' || requireService(t, storeKind);

    before(async () => {
      pushService = await new PushService().start();
      hub = await startHub();
      integrations = await startIntegrations(hub.server, section);
      assert.equal(integrations.push?.store.name, storeKind);
    });
    after(async () => {
      await hub?.close();
      await integrations?.close();
      await pushService?.close();
      if (storeKind === 'redis' && !skip) {
        const redis = new Redis('redis://127.0.0.1:6379');
        const keys = await redis.keys(`herald:{${namespace}}:*`);
        if (keys.length > 0) await redis.del(...keys);
        await redis.quit();
      }
      if (storeKind === 'nats' && !skip) {
        await deleteNatsBuckets(`herald_push_${namespace}`);
        await deleteNatsBuckets(`herald_presence_${namespace}`);
      }
    });

    /** A browser of `user` subscribed through the API; returns its local push-service handle. */
    async function browser(user: string) {
      const sub = pushService.subscribe(`${user}-${randomUUID().slice(0, 6)}`);
      const answer = await api(hub, 'POST', '/api/push/subscriptions', sub.json, await token({ sub: user }));
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.id, pushSubscriptionId(sub.json.endpoint));
      return sub;
    }

    async function decisions(): Promise<Record<string, number>> {
      const text = await hub.server.metrics.getSingleMetricAsString('herald_push_decisions_total');
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/decision="([a-z_]+)"} (\d+)/g)) out[m[1] as string] = Number(m[2]);
      return out;
    }

    async function whenDecided(decision: string, before: Record<string, number>): Promise<void> {
      let now: Record<string, number> = {};
      const deadline = Date.now() + 5000;
      while ((now = await decisions())[decision] === before[decision]) {
        if (Date.now() > deadline) throw new Error(`no "${decision}" decision; saw ${JSON.stringify(now)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }

    it('serves the VAPID public key', async (t) => {
      if (!(await ready(t))) return void (skip = true);
      const answer = await fetch(`${hub.url}/api/push/vapid-public-key`).then((r) => r.json());
      assert.equal(Buffer.from(answer.publicKey, 'base64url').length, 65);
      assert.equal(answer.publicKey, integrations.push?.sender.publicKey);
    });

    it('pushes an offline user: the push service decrypts exactly the payload, signed with VAPID', async (t) => {
      if (!(await ready(t))) return;
      const user = `bob-${randomUUID()}`;
      const sub = await browser(user);
      const channel = `user:${user}`;
      const ack = await publish(
        hub,
        channel,
        { text: 'hello' },
        {
          event: 'message',
          push: { title: 'New message', body: 'from alice', url: '/inbox', ttl: 600, urgency: 'high', topic: 'inbox' },
        },
      );
      await until(() => pushService.for(sub.id).length === 1, 'the push');
      const got = pushService.for(sub.id)[0]!;
      assert.equal(got.error, undefined);
      // The publication as stored (and delivered) carries no push section.
      const history = await api(hub, 'GET', `/api/channels/${encodeURIComponent(channel)}/history`);
      const pub = history.body.publications[0];
      assert.equal(pub.push, undefined);
      assert.deepEqual(pub.data, { text: 'hello' });
      const expected =
        `{"title":"New message","body":"from alice","url":"/inbox","channel":${JSON.stringify(channel)},` +
        `"offset":${ack.offset},"epoch":"${ack.epoch}","event":"message","ts":${pub.ts}}`;
      assert.ok(got.plaintext?.equals(Buffer.from(expected)), `payload ${got.plaintext?.toString()}`);
      assert.equal(got.headers['content-encoding'], 'aes128gcm');
      assert.equal(got.headers.ttl, '600');
      assert.equal(got.headers.urgency, 'high');
      assert.equal(got.headers.topic, 'inbox');
      assert.equal(got.vapid.valid, true, JSON.stringify(got.vapid));
      assert.equal(got.vapid.claims.sub, SUBJECT);
      assert.equal(got.vapid.key, integrations.push?.sender.publicKey);
    });

    it('does not push a user with a live connection on any transport', async (t) => {
      if (!(await ready(t))) return;
      const user = `carol-${randomUUID()}`;
      const sub = await browser(user);
      const client = await WsTestClient.connect(hub.wsUrl, await token({ sub: user }));
      await eventually(() => integrations.tracker!.registry.isConnected('user', user), 'the connection registered');
      const before = await decisions();
      await publish(hub, `user:${user}`, { n: 1 }, { push: { title: 'ping' } });
      await whenDecided('online', before);
      assert.equal(pushService.for(sub.id).length, 0);
      client.close();
    });

    it('removes a subscription the push service reports gone (410)', async (t) => {
      if (!(await ready(t))) return;
      const user = `dave-${randomUUID()}`;
      const sub = await browser(user);
      const keep = await browser(user);
      pushService.statuses.set(sub.id, 410);
      const jwt = await token({ sub: user });
      assert.equal((await api(hub, 'GET', '/api/push/subscriptions', undefined, jwt)).body.subscriptions.length, 2);
      await publish(hub, `inbox:${user}:1`, { n: 1 }, { push: { title: 'gone?' } });
      await until(() => pushService.for(sub.id).length === 1 && pushService.for(keep.id).length === 1, 'both pushes');
      let list: any[] = [];
      await eventually(async () => {
        list = (await api(hub, 'GET', '/api/push/subscriptions', undefined, jwt)).body.subscriptions;
        return list.length === 1;
      }, 'the gone subscription removed');
      assert.deepEqual(
        list.map((s) => s.endpoint),
        [keep.json.endpoint],
      );
    });

    it('honours preferences: muted channels, quiet hours (high urgency passes)', async (t) => {
      if (!(await ready(t))) return;
      const user = `erin-${randomUUID()}`;
      const sub = await browser(user);
      const jwt = await token({ sub: user });
      assert.deepEqual((await api(hub, 'GET', '/api/push/preferences', undefined, jwt)).body, {
        muted: [],
        quietHours: null,
      });
      const put = await api(hub, 'PUT', '/api/push/preferences', { muted: [`inbox:${user}:*`] }, jwt);
      assert.equal(put.status, 200);
      let before = await decisions();
      await publish(hub, `inbox:${user}:7`, { n: 1 }, { push: { title: 'muted' } });
      await whenDecided('muted', before);
      // Quiet hours around the current UTC time.
      const hour = new Date().getUTCHours();
      const hh = (h: number): string => `${String((h + 24) % 24).padStart(2, '0')}:00`;
      const quiet = { start: hh(hour - 1), end: hh(hour + 1), timeZone: 'UTC' };
      assert.equal((await api(hub, 'PUT', '/api/push/preferences', { quietHours: quiet }, jwt)).status, 200);
      before = await decisions();
      await publish(hub, `user:${user}`, { n: 2 }, { push: { title: 'quiet' } });
      await whenDecided('quiet_hours', before);
      assert.equal(pushService.for(sub.id).length, 0);
      await publish(hub, `user:${user}`, { n: 3 }, { push: { title: 'urgent', urgency: 'high' } });
      await until(() => pushService.for(sub.id).length === 1, 'the urgent push');
      const bad = await api(hub, 'PUT', '/api/push/preferences', { quietHours: { start: '25:00', end: '07:00' } }, jwt);
      assert.equal(bad.status, 400);
    });

    it('rate-limits per user, and handles each publication once', async (t) => {
      if (!(await ready(t))) return;
      const user = `frank-${randomUUID()}`;
      const sub = await browser(user);
      const before = await decisions();
      for (let i = 0; i < 4; i++) await publish(hub, `user:${user}`, { i }, { push: { title: `#${i}` } });
      await whenDecided('rate_limited', before);
      await until(() => pushService.for(sub.id).length === 3, 'three pushes');
      // The same publication handed over twice (a replayed hook): pushed once.
      const other = `gina-${randomUUID()}`;
      const otherSub = await browser(other);
      const ack = await publish(hub, `user:${other}`, { x: 1 }, { push: { title: 'once' } });
      await until(() => pushService.for(otherSub.id).length === 1, 'the push');
      const beforeDup = await decisions();
      const record = { channel: `user:${other}`, offset: ack.offset, epoch: ack.epoch, json: `{"ts":1}` };
      integrations.push?.notify(record, { title: 'once' });
      await whenDecided('duplicate', beforeDup);
      assert.equal(pushService.for(otherSub.id).length, 1);
    });

    it('refuses bad push sections and registrations with clear errors', async (t) => {
      if (!(await ready(t))) return;
      const status = async (body: unknown, bearer?: string): Promise<[number, string]> => {
        const a = await api(hub, 'POST', '/api/publish', body, bearer);
        return [a.status, a.body?.error?.code];
      };
      assert.deepEqual(await status({ channel: 'news', data: 1, push: { title: 'x' } }), [400, 'bad_request']);
      assert.deepEqual(await status({ channel: 'user:x', data: 1, push: { body: 'no title' } }), [400, 'bad_request']);
      assert.deepEqual(await status({ channel: 'user:x', data: 1, push: { title: 'x', urgency: 'now' } }), [
        400,
        'bad_request',
      ]);
      assert.deepEqual(await status({ channel: 'user:x', data: 1, push: { title: 'x', extra: 1 } }), [
        400,
        'bad_request',
      ]);
      const client = await token({ sub: 'x' });
      assert.deepEqual(await status({ channel: 'user:x', data: 1, push: { title: 'x' } }, client), [403, 'forbidden']);
      const stored = await api(hub, 'GET', `/api/channels/${encodeURIComponent('user:x')}/history`);
      assert.deepEqual(stored.body.publications, [], 'a refused push section publishes nothing');
      // Registration: token required; keys checked; https unless allowed; known hosts only.
      const sub = pushService.subscribe(`reg-${randomUUID()}`).json;
      assert.equal((await api(hub, 'POST', '/api/push/subscriptions', sub, 'not-a-token')).status, 401);
      const badKey = { ...sub, keys: { ...sub.keys, p256dh: 'AAAA' } };
      assert.equal((await api(hub, 'POST', '/api/push/subscriptions', badKey, client)).status, 400);
      const elsewhere = { ...sub, endpoint: 'http://10.0.0.1/push/x' };
      assert.equal((await api(hub, 'POST', '/api/push/subscriptions', elsewhere, client)).status, 400);
      assert.equal((await api(hub, 'PATCH', '/api/push/subscriptions', sub, client)).status, 405);
    });

    it('moves an endpoint to the user who registered it last (a shared browser), and deletes it', async (t) => {
      if (!(await ready(t))) return;
      const first = `hank-${randomUUID()}`;
      const second = `ivy-${randomUUID()}`;
      const sub = await browser(first);
      const jwt2 = await token({ sub: second });
      assert.equal((await api(hub, 'POST', '/api/push/subscriptions', sub.json, jwt2)).status, 200);
      const jwt1 = await token({ sub: first });
      assert.equal((await api(hub, 'GET', '/api/push/subscriptions', undefined, jwt1)).body.subscriptions.length, 0);
      const removed = await api(hub, 'DELETE', '/api/push/subscriptions', { endpoint: sub.json.endpoint }, jwt2);
      assert.deepEqual(removed.body, { removed: true });
      assert.equal((await api(hub, 'GET', '/api/push/subscriptions', undefined, jwt2)).body.subscriptions.length, 0);
    });

    // A memory store is one process's: there is nothing for a second node to share.
    if (storeKind !== 'memory') {
      it('a second node shares the store: the VAPID pair, the subscriptions, and each publication pushed once', async (t) => {
        if (!(await ready(t))) return;
        const other = await startHub();
        const second = await startIntegrations(other.server, section);
        try {
          assert.equal(second.push?.sender.publicKey, integrations.push?.sender.publicKey, 'the first node’s pair');
          const user = `kim-${randomUUID()}`;
          const sub = await browser(user);
          const listed = await api(other, 'GET', '/api/push/subscriptions', undefined, await token({ sub: user }));
          assert.deepEqual(
            listed.body.subscriptions.map((s: { id: string }) => s.id),
            [pushSubscriptionId(sub.json.endpoint)],
          );
          // Both nodes handle the same publications at the same time (a hook replayed on every node).
          const channel = `user:${user}`;
          const count = async (decision: string): Promise<number> => {
            let total = 0;
            for (const node of [hub, other]) {
              const text = await node.server.metrics.getSingleMetricAsString('herald_push_decisions_total');
              total += Number(new RegExp(`decision="${decision}"} (\\d+)`).exec(text)?.[1] ?? 0);
            }
            return total;
          };
          const before = { send: await count('send'), duplicate: await count('duplicate') };
          const rounds = 3; // within the rate limit of 3 per user
          for (let offset = 1; offset <= rounds; offset++) {
            const record = { channel, offset, epoch: `e-${RUN}`, json: `{"ts":${Date.now()}}` };
            integrations.push?.notify(record, { title: `#${offset}` });
            second.push?.notify(record, { title: `#${offset}` });
          }
          await eventually(
            async () =>
              (await count('send')) + (await count('duplicate')) === before.send + before.duplicate + 2 * rounds,
            'both nodes to decide every publication',
          );
          assert.equal((await count('send')) - before.send, rounds);
          assert.equal((await count('duplicate')) - before.duplicate, rounds);
          // One send per publication, to the one subscription: exactly one push each.
          await until(() => pushService.for(sub.id).length === rounds, 'one push per publication');
        } finally {
          await other.close();
          await second.close();
        }
      });
    }
  });
}
