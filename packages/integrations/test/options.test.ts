/**
 * The `integrations` configuration section: defaults, errors that name the key, and the `herald`
 * binary composing it from a config file (webhooks from a real hub process).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { OptionsError } from '@herald/server';
import { resolveIntegrationsOptions, verifyWebhook } from '../src/index.ts';
import { token, until } from '../../../test/support/hub.ts';
import { runHerald } from '../../../test/support/cli.ts';
import { WsTestClient } from '../../../test/support/ws-client.ts';
import { WebhookReceiver } from './support/receivers.ts';

const SECRET = 'whsec-test-0123456789abcdef';

function error(config: unknown, broker?: string): string {
  try {
    resolveIntegrationsOptions(config, broker);
  } catch (e) {
    assert.ok(e instanceof OptionsError);
    return e.message;
  }
  return 'accepted';
}

describe('integrations options', () => {
  it('defaults: nothing configured starts nothing; shared state follows the broker', () => {
    const none = resolveIntegrationsOptions({});
    assert.deepEqual([none.registry, none.webhooks, none.push, none.bridges], ['memory', undefined, undefined, []]);
    assert.equal(resolveIntegrationsOptions({}, 'redis://10.0.0.1:6379').registry, 'redis://10.0.0.1:6379');
    assert.equal(resolveIntegrationsOptions({}, 'nats://10.0.0.1:4222').registry, 'nats://10.0.0.1:4222');
    const prefixed = resolveIntegrationsOptions({}, 'redis://10.0.0.1:6379/2?prefix=shop.eu');
    assert.deepEqual([prefixed.registry, prefixed.namespace], ['redis://10.0.0.1:6379/2', 'shop_eu']);
    const withPush = resolveIntegrationsOptions({ push: { vapid: { subject: 'mailto:a@b.c' } } }, 'nats://x:4222');
    assert.equal(withPush.push?.store, 'nats://x:4222', 'the push store follows a NATS broker too');
    const explicit = { push: { vapid: { subject: 'mailto:a@b.c' }, store: 'memory' } };
    assert.equal(resolveIntegrationsOptions(explicit, 'nats://x:4222').push?.store, 'memory');
    const hooks = resolveIntegrationsOptions({ webhooks: { url: 'https://b.example/h', secret: SECRET } });
    assert.deepEqual(
      [...hooks.webhooks!.events],
      ['user.online', 'user.offline', 'channel.occupied', 'channel.vacated'],
      'client publications are opt-in',
    );
    assert.equal(hooks.webhooks?.offlineDelayMs, 5000);
  });

  it('the webhook outbox follows shared state; its claim timeout stays above the request timeout', () => {
    const hooks = { url: 'https://b.example/h', secret: SECRET };
    const outbox = (config: object, broker?: string): string | undefined =>
      resolveIntegrationsOptions({ webhooks: hooks, ...config }, broker).webhooks?.outbox;
    assert.equal(outbox({}), 'memory');
    assert.equal(outbox({}, 'redis://10.0.0.1:6379?prefix=eu'), 'redis://10.0.0.1:6379');
    assert.equal(outbox({}, 'nats://10.0.0.1:4222'), 'nats://10.0.0.1:4222');
    assert.equal(outbox({ registry: 'memory' }, 'nats://10.0.0.1:4222'), 'memory');
    const own = { webhooks: { ...hooks, outbox: 'memory' } };
    assert.equal(resolveIntegrationsOptions(own, 'redis://x:6379').webhooks?.outbox, 'memory');
    const claimIdle = (w: object): number | undefined =>
      resolveIntegrationsOptions({ webhooks: { ...hooks, ...w } }).webhooks?.claimIdleMs;
    assert.equal(claimIdle({}), 30_000);
    assert.equal(claimIdle({ timeout: 25 }), 45_000);
    assert.equal(claimIdle({ timeout: 2, claimIdle: 3 }), 3000);
    assert.match(error({ webhooks: { ...hooks, timeout: 10, claimIdle: 10 } }), /webhooks.claimIdle": must be above/);
    assert.match(error({ webhooks: { ...hooks, outbox: 'kafka://x' } }), /webhooks.outbox/);
  });

  it('names the bad key, as written in the file', () => {
    assert.match(error({ webhook: {} }), /"integrations.webhook": is not a known key/);
    assert.match(error({ webhooks: { url: 'https://b.example', secret: 'short' } }), /integrations.webhooks.secret/);
    assert.match(error({ webhooks: { secret: SECRET } }), /integrations.webhooks.url": is required/);
    assert.match(error({ webhooks: { url: 'https://b', secret: SECRET, events: ['user.away'] } }), /events\[0\]/);
    assert.match(error({ push: {} }), /integrations.push.vapid.subject": is required/);
    assert.match(error({ push: { vapid: { subject: 'mailto:a@b.c' }, userChannels: ['user:*'] } }), /userChannels/);
    assert.match(error({ bridges: [{ type: 'kafka' }] }), /bridges\[0\].type/);
    assert.match(
      error({ bridges: [{ type: 'nats', url: 'nats://x:4222', routes: [{ subject: 'a.*', channel: 'a:{2}' }] }] }),
      /bridges\[0\].routes.*uses \{2\}/,
    );
    assert.match(
      error({
        bridges: [
          { type: 'mqtt', name: 'x', url: 'mqtt://h', routes: [{ topic: 'a', channel: 'a' }] },
          { type: 'mqtt', name: 'x', url: 'mqtt://h', routes: [{ topic: 'b', channel: 'b' }] },
        ],
      }),
      /bridges\[1\].name.*used by another bridge/,
    );
  });
});

describe('the herald binary with an integrations section', () => {
  let dir: string;
  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a bad section before starting (exit 2, one sentence naming the key)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'herald-int-'));
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ integrations: { webhooks: { url: 'ftp://x', secret: SECRET } } }));
    const herald = runHerald(['serve', '--config', file], { PORT: '0' });
    try {
      assert.equal(await herald.exited, 2);
      assert.match(herald.stderr(), /integrations\.webhooks\.url/);
    } finally {
      herald.kill();
    }
  });

  it('sends webhooks configured in YAML, signed', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'herald-int-'));
    const receiver = await new WebhookReceiver().start();
    const file = join(dir, 'herald.yaml');
    await writeFile(
      file,
      [
        'integrations:',
        '  webhooks:',
        `    url: ${receiver.url}`,
        `    secret: ${SECRET}`,
        '    offlineDelay: 0.2',
      ].join('\n'),
    );
    const secret = 'test-jwt-secret-0123456789abcdef0123456789';
    const herald = runHerald(['serve', '--config', file], {
      PORT: '0',
      HERALD_API_KEY: 'test-api-key-0123456789abcdef',
      HERALD_JWT_SECRET: secret,
      HOST: '127.0.0.1',
      HERALD_LOG_LEVEL: 'silent',
    });
    try {
      const base = await herald.listening;
      const client = await WsTestClient.connect(
        `${base.replace('http', 'ws')}/ws`,
        await token({ sub: 'yaml-user', secret }),
      );
      await until(() => receiver.accepted('user.online').length === 1, 'user.online');
      const got = receiver.received[0]!;
      assert.deepEqual(verifyWebhook(got.raw, got.headers['herald-signature'], SECRET), got.event);
      assert.equal(got.event.data.userId, 'yaml-user');
      client.close();
      await until(() => receiver.accepted('user.offline').length === 1, 'user.offline');
      herald.child.kill('SIGTERM');
      assert.equal(await herald.exited, 0);
    } finally {
      herald.kill();
      await receiver.close();
    }
  });
});
