/**
 * The `integrations` section of the configuration, as written in a config file (JSON or YAML;
 * times in seconds), resolved into typed, defaulted, frozen options. Every key is documented in
 * docs/integrations.md; an unknown or bad key stops the start with its full path.
 */
import { isValidPattern } from '@herald/protocol';
import type { MqttBridgeOptions, MqttIdentity } from './bridges/mqtt.js';
import type { NatsBridgeOptions } from './bridges/nats.js';
import type { RedisStreamBridgeOptions } from './bridges/redis-streams.js';
import { compileMqttRoutes } from './bridges/mqtt.js';
import { compileNatsRoutes } from './bridges/nats.js';
import { compileTemplate } from './bridges/mapping.js';
import { compileUserChannels } from './push/user-channels.js';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './webhooks/events.js';
import { array, boolean, compiled, fail, number, object, oneOf, string, strings, type Obj } from './validate.js';

/** Where shared state lives: in this process, or on Redis / NATS for several nodes. */
export type StateUrl = string;

export interface WebhookOptions {
  readonly url: string;
  readonly secrets: readonly string[];
  readonly events: ReadonlySet<WebhookEventType>;
  readonly channels: readonly string[];
  readonly offlineDelayMs: number;
  readonly vacatedDelayMs: number;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly queueSize: number;
  readonly concurrency: number;
  readonly deadLetterFile: string | undefined;
  /** Where events wait: `memory` (this process), `redis://...` or `nats://...` (survive a crash). */
  readonly outbox: StateUrl;
  /** An event held this long by a node that does not answer is taken over by another node. */
  readonly claimIdleMs: number;
}

export interface PushOptionsResolved {
  readonly vapid: { readonly subject: string; readonly publicKey?: string; readonly privateKey?: string };
  readonly store: StateUrl;
  readonly userChannels: readonly string[];
  readonly allowClientPush: boolean;
  readonly rateLimit: { readonly limit: number; readonly windowSeconds: number } | undefined;
  readonly defaultTtlSeconds: number;
  readonly maxSubscriptionsPerUser: number;
  readonly queueSize: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly endpointHosts: readonly string[];
  readonly allowInsecureEndpoints: boolean;
}

export type BridgeOptions =
  | ({ readonly type: 'mqtt' } & MqttBridgeOptions)
  | ({ readonly type: 'nats' } & NatsBridgeOptions)
  | ({ readonly type: 'redis-stream' } & RedisStreamBridgeOptions);

export interface IntegrationsOptions {
  /** Shared state of presence aggregation: `memory`, `redis://...` or `nats://...`. */
  readonly registry: StateUrl;
  /** Key prefix on Redis, bucket on NATS; separates deployments sharing one server. */
  readonly namespace: string;
  readonly nodeTtlMs: number;
  readonly sweepIntervalMs: number;
  readonly webhooks: WebhookOptions | undefined;
  readonly push: PushOptionsResolved | undefined;
  readonly bridges: readonly BridgeOptions[];
}

/** Push services of the browsers in use (Chrome/Android, Firefox, Safari, Edge). */
export const DEFAULT_PUSH_HOSTS = [
  'fcm.googleapis.com',
  'updates.push.services.mozilla.com',
  'web.push.apple.com',
  '*.push.apple.com',
  '*.notify.windows.com',
] as const;

const STATE_URL = /^(memory|redis:\/\/\S+|rediss:\/\/\S+|nats:\/\/\S+)$/;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const seconds = (value: number | undefined, fallback: number): number => Math.round((value ?? fallback) * 1000);

/**
 * Resolves the section. `brokerUrl` (HERALD_BROKER) is where shared state goes when the section
 * does not say: a Redis broker means a Redis registry and push store, NATS a NATS KV registry and
 * push store.
 */
export function resolveIntegrationsOptions(config: unknown, brokerUrl = 'memory'): IntegrationsOptions {
  const p = 'integrations';
  const c =
    object(config, p, ['registry', 'namespace', 'nodeTtl', 'sweepInterval', 'webhooks', 'push', 'bridges']) ?? {};
  const registry = string(c.registry, `${p}.registry`, {
    pattern: STATE_URL,
    describe: 'memory, redis://... or nats://...',
  });
  const broker = fromBroker(brokerUrl);
  const defaultState = broker.url;
  const namespace = string(c.namespace, `${p}.namespace`, {
    pattern: /^[A-Za-z0-9_-]{1,64}$/,
    describe: 'letters, digits, _ or -',
  });
  const options: IntegrationsOptions = {
    registry: registry ?? defaultState,
    namespace: namespace ?? broker.namespace ?? 'default',
    nodeTtlMs: seconds(number(c.nodeTtl, `${p}.nodeTtl`, 1, 3600), 15),
    sweepIntervalMs: seconds(number(c.sweepInterval, `${p}.sweepInterval`, 0.01, 60), 1),
    webhooks: webhooks(c.webhooks, `${p}.webhooks`, registry ?? defaultState),
    push: push(c.push, `${p}.push`, registry ?? defaultState),
    bridges: bridges(c.bridges, `${p}.bridges`),
  };
  if (options.sweepIntervalMs * 3 > options.nodeTtlMs) fail(`${p}.nodeTtl`, 'must be at least 3 sweep intervals');
  return Object.freeze(options);
}

/**
 * Shared state follows the broker: its URL without Herald's `?prefix=` (which the brokers take
 * out themselves), and that prefix as the default namespace, so deployments that share a Redis or
 * NATS server under different prefixes do not share presence either.
 */
function fromBroker(brokerUrl: string): { url: string; namespace: string | undefined } {
  if (!/^(redis|rediss|nats):\/\//.test(brokerUrl)) return { url: 'memory', namespace: undefined };
  const q = brokerUrl.indexOf('?');
  if (q === -1) return { url: brokerUrl, namespace: undefined };
  const prefix = new URLSearchParams(brokerUrl.slice(q + 1)).get('prefix');
  return {
    url: brokerUrl.slice(0, q),
    namespace: prefix === null ? undefined : prefix.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64),
  };
}

function webhooks(value: unknown, p: string, defaultState: string): WebhookOptions | undefined {
  const w = object(value, p, [
    'url',
    'secret',
    'events',
    'channels',
    'offlineDelay',
    'vacatedDelay',
    'timeout',
    'maxAttempts',
    'retryBase',
    'retryMax',
    'queueSize',
    'concurrency',
    'deadLetterFile',
    'outbox',
    'claimIdle',
  ]);
  if (w === undefined) return undefined;
  const url = string(w.url, `${p}.url`, { pattern: /^https?:\/\/\S+$/, describe: 'an http(s) URL' });
  if (url === undefined) fail(`${p}.url`, 'is required');
  const secretCheck = { min: 16, describe: 'a string of at least 16 characters' };
  const secrets =
    typeof w.secret === 'string'
      ? [string(w.secret, `${p}.secret`, secretCheck) as string]
      : strings(w.secret, `${p}.secret`, secretCheck);
  if (secrets === undefined || secrets.length === 0)
    fail(`${p}.secret`, 'is required (one secret, or a list while rotating)');
  const events = (
    array(w.events, `${p}.events`, { min: 1 }) ?? ['user.online', 'user.offline', 'channel.occupied', 'channel.vacated']
  ).map((e, i) => oneOf(e, `${p}.events[${i}]`, WEBHOOK_EVENT_TYPES) as WebhookEventType);
  const channels = strings(w.channels, `${p}.channels`) ?? ['*'];
  channels.forEach((c, i) => isValidPattern(c) || fail(`${p}.channels[${i}]`, 'must be a channel pattern'));
  const retryBaseMs = seconds(number(w.retryBase, `${p}.retryBase`, 0.001, 3600), 1);
  const retryMaxMs = seconds(number(w.retryMax, `${p}.retryMax`, 0.001, 86_400), 300);
  if (retryMaxMs < retryBaseMs) fail(`${p}.retryMax`, 'must not be below retryBase');
  const timeoutMs = seconds(number(w.timeout, `${p}.timeout`, 0.01, 300), 10);
  // Above the request timeout, so a node still waiting for an answer keeps its event.
  const claimIdleMs = seconds(number(w.claimIdle, `${p}.claimIdle`, 0.1, 3600), Math.max(30, timeoutMs / 1000 + 20));
  if (claimIdleMs <= timeoutMs) fail(`${p}.claimIdle`, 'must be above timeout (a few seconds above it)');
  const outbox = string(w.outbox, `${p}.outbox`, { pattern: STATE_URL, describe: 'memory, redis://... or nats://...' });
  return {
    url,
    secrets,
    events: new Set(events),
    channels,
    offlineDelayMs: seconds(number(w.offlineDelay, `${p}.offlineDelay`, 0, 3600), 5),
    vacatedDelayMs: seconds(number(w.vacatedDelay, `${p}.vacatedDelay`, 0, 3600), 5),
    timeoutMs,
    maxAttempts: number(w.maxAttempts, `${p}.maxAttempts`, 1, 100, { integer: true }) ?? 10,
    retryBaseMs,
    retryMaxMs,
    queueSize: number(w.queueSize, `${p}.queueSize`, 1, 10_000_000, { integer: true }) ?? 10_000,
    concurrency: number(w.concurrency, `${p}.concurrency`, 1, 1000, { integer: true }) ?? 8,
    deadLetterFile: string(w.deadLetterFile, `${p}.deadLetterFile`),
    outbox: outbox ?? defaultState,
    claimIdleMs,
  };
}

function push(value: unknown, p: string, defaultState: string): PushOptionsResolved | undefined {
  const o = object(value, p, [
    'vapid',
    'store',
    'userChannels',
    'allowClientPush',
    'rateLimit',
    'defaultTtl',
    'maxSubscriptionsPerUser',
    'queueSize',
    'concurrency',
    'timeout',
    'maxAttempts',
    'endpointHosts',
    'allowInsecureEndpoints',
  ]);
  if (o === undefined) return undefined;
  const v = object(o.vapid, `${p}.vapid`, ['subject', 'publicKey', 'privateKey']);
  const subject = string(v?.subject, `${p}.vapid.subject`, {
    pattern: /^(mailto:\S+@\S+|https:\/\/\S+)$/,
    describe: 'a mailto: address or an https: URL (RFC 8292 contact)',
  });
  if (subject === undefined) fail(`${p}.vapid.subject`, 'is required: a mailto: or https: contact for push services');
  const key = { pattern: /^[A-Za-z0-9_-]+$/, describe: 'base64url' };
  const publicKey = string(v?.publicKey, `${p}.vapid.publicKey`, key);
  const privateKey = string(v?.privateKey, `${p}.vapid.privateKey`, key);
  if ((publicKey === undefined) !== (privateKey === undefined)) {
    fail(
      `${p}.vapid`,
      'needs both publicKey and privateKey, or neither (then a pair is generated and shared through the store)',
    );
  }
  if (publicKey !== undefined && Buffer.from(publicKey, 'base64url').length !== 65)
    fail(`${p}.vapid.publicKey`, 'must encode 65 bytes');
  if (privateKey !== undefined && Buffer.from(privateKey, 'base64url').length !== 32)
    fail(`${p}.vapid.privateKey`, 'must encode 32 bytes');
  const store = string(o.store, `${p}.store`, {
    pattern: STATE_URL,
    describe: 'memory, redis://... or nats://...',
  });
  const userChannels = strings(o.userChannels, `${p}.userChannels`) ?? ['user:{userId}'];
  compiled(`${p}.userChannels`, () => compileUserChannels(userChannels));
  let rateLimit: PushOptionsResolved['rateLimit'] = { limit: 30, windowSeconds: 60 };
  if (o.rateLimit === null) rateLimit = undefined;
  else if (o.rateLimit !== undefined) {
    const r = object(o.rateLimit, `${p}.rateLimit`, ['limit', 'window']) as Obj;
    rateLimit = {
      limit: number(r.limit, `${p}.rateLimit.limit`, 1, 1_000_000, { integer: true }) ?? 30,
      windowSeconds: number(r.window, `${p}.rateLimit.window`, 1, 86_400, { integer: true }) ?? 60,
    };
  }
  return {
    vapid: { subject, ...(publicKey === undefined ? {} : { publicKey, privateKey: privateKey as string }) },
    store: store ?? defaultState,
    userChannels,
    allowClientPush: boolean(o.allowClientPush, `${p}.allowClientPush`) ?? false,
    rateLimit,
    defaultTtlSeconds: number(o.defaultTtl, `${p}.defaultTtl`, 0, 28 * 86_400, { integer: true }) ?? 86_400,
    maxSubscriptionsPerUser:
      number(o.maxSubscriptionsPerUser, `${p}.maxSubscriptionsPerUser`, 1, 1000, { integer: true }) ?? 10,
    queueSize: number(o.queueSize, `${p}.queueSize`, 1, 10_000_000, { integer: true }) ?? 10_000,
    concurrency: number(o.concurrency, `${p}.concurrency`, 1, 1000, { integer: true }) ?? 16,
    timeoutMs: seconds(number(o.timeout, `${p}.timeout`, 0.01, 300), 10),
    maxAttempts: number(o.maxAttempts, `${p}.maxAttempts`, 1, 10, { integer: true }) ?? 3,
    endpointHosts: strings(o.endpointHosts, `${p}.endpointHosts`) ?? DEFAULT_PUSH_HOSTS,
    allowInsecureEndpoints: boolean(o.allowInsecureEndpoints, `${p}.allowInsecureEndpoints`) ?? false,
  };
}

const ROUTE_KEYS = ['channel', 'event', 'decode'];

function bridges(value: unknown, p: string): BridgeOptions[] {
  const list = array(value, p, { max: 100 }) ?? [];
  const names = new Set<string>();
  return list.map((item, i) => {
    const path = `${p}[${i}]`;
    const type = oneOf((item as Obj | null)?.type, `${path}.type`, ['mqtt', 'nats', 'redis-stream'] as const);
    if (type === undefined) fail(`${path}.type`, 'is required: mqtt, nats or redis-stream');
    const common = ['type', 'name', 'url', 'routes'];
    const keys = {
      mqtt: [
        ...common,
        'clientId',
        'username',
        'password',
        'qos',
        'protocolVersion',
        'sessionExpiry',
        'retained',
        'identity',
      ],
      nats: [...common, 'stream', 'durable', 'deliver', 'ackWait'],
      'redis-stream': [...common, 'group', 'consumer', 'start', 'batch', 'block', 'claimIdle'],
    }[type];
    const b = object(item, path, keys) as Obj;
    const name =
      string(b.name, `${path}.name`, { pattern: NAME, describe: 'letters, digits, _ or - (at most 64)' }) ??
      `${type}-${i + 1}`;
    if (names.has(name)) fail(`${path}.name`, `"${name}" is used by another bridge`);
    names.add(name);
    const urlPattern = {
      mqtt: /^(mqtts?|wss?|tcp|tls):\/\/\S+$/,
      nats: /^nats:\/\/\S+$/,
      'redis-stream': /^rediss?:\/\/\S+$/,
    }[type];
    const url = string(b.url, `${path}.url`, {
      pattern: urlPattern,
      describe: `a ${type === 'redis-stream' ? 'redis' : type}:// URL`,
    });
    if (url === undefined) fail(`${path}.url`, 'is required');
    const routeList = array(b.routes, `${path}.routes`, { min: 1, max: 1000 });
    if (routeList === undefined) fail(`${path}.routes`, 'is required: at least one route');
    const addressKey = { mqtt: 'topic', nats: 'subject', 'redis-stream': 'stream' }[type];
    const parsedRoutes = routeList.map((r, j) => {
      const rp = `${path}.routes[${j}]`;
      const route = object(r, rp, [
        addressKey,
        ...ROUTE_KEYS,
        ...(type === 'redis-stream' ? ['payloadField'] : []),
      ]) as Obj;
      const address = string(route[addressKey], `${rp}.${addressKey}`);
      if (address === undefined) fail(`${rp}.${addressKey}`, 'is required');
      const channel = string(route.channel, `${rp}.channel`);
      if (channel === undefined) fail(`${rp}.channel`, 'is required (a channel name or template like sensors:{1})');
      return {
        [addressKey]: address,
        channel,
        ...(route.event === undefined ? {} : { event: string(route.event, `${rp}.event`) }),
        ...(route.decode === undefined
          ? {}
          : { decode: oneOf(route.decode, `${rp}.decode`, ['json', 'text', 'auto'] as const) }),
        ...(route.payloadField === undefined ? {} : { payloadField: string(route.payloadField, `${rp}.payloadField`) }),
      };
    });
    if (type === 'mqtt') {
      const routes = parsedRoutes as unknown as MqttBridgeOptions['routes'];
      compiled(`${path}.routes`, () => compileMqttRoutes(routes));
      return {
        type,
        name,
        url,
        routes,
        clientId: string(b.clientId, `${path}.clientId`, { max: 128 }) ?? `herald-${name}`,
        ...(b.username === undefined ? {} : { username: string(b.username, `${path}.username`) }),
        ...(b.password === undefined ? {} : { password: string(b.password, `${path}.password`) }),
        qos: (number(b.qos, `${path}.qos`, 0, 1, { integer: true }) ?? 1) as 0 | 1,
        protocolVersion:
          (oneOf(b.protocolVersion === undefined ? undefined : String(b.protocolVersion), `${path}.protocolVersion`, [
            '4',
            '5',
          ]) ?? '5') === '4'
            ? 4
            : 5,
        sessionExpirySeconds:
          number(b.sessionExpiry, `${path}.sessionExpiry`, 0, 4_294_967_295, { integer: true }) ?? 86_400,
        retained: boolean(b.retained, `${path}.retained`) ?? false,
        identity: mqttIdentity(b.identity, `${path}.identity`),
      } as BridgeOptions;
    }
    if (type === 'nats') {
      const routes = parsedRoutes as unknown as NatsBridgeOptions['routes'];
      compiled(`${path}.routes`, () => compileNatsRoutes(routes));
      const stream = string(b.stream, `${path}.stream`, {
        pattern: /^[A-Za-z0-9_-]{1,64}$/,
        describe: 'a JetStream stream name',
      });
      return {
        type,
        name,
        url,
        routes,
        ...(stream === undefined ? {} : { stream }),
        ...(b.durable === undefined
          ? {}
          : { durable: string(b.durable, `${path}.durable`, { pattern: NAME, describe: 'letters, digits, _ or -' }) }),
        deliver: oneOf(b.deliver, `${path}.deliver`, ['new', 'all'] as const) ?? 'new',
        ackWaitSeconds: number(b.ackWait, `${path}.ackWait`, 1, 3600) ?? 30,
      } as BridgeOptions;
    }
    const routes = parsedRoutes as unknown as RedisStreamBridgeOptions['routes'];
    routes.forEach((r, j) =>
      compiled(`${path}.routes[${j}].channel`, () => compileTemplate(r.channel, 0, ['stream', 'field.'])),
    );
    if (new Set(routes.map((r) => r.stream)).size !== routes.length)
      fail(`${path}.routes`, 'each stream may appear in one route only');
    return {
      type,
      name,
      url,
      routes,
      ...(b.group === undefined ? {} : { group: string(b.group, `${path}.group`) }),
      ...(b.consumer === undefined ? {} : { consumer: string(b.consumer, `${path}.consumer`) }),
      start: oneOf(b.start, `${path}.start`, ['new', 'all'] as const) ?? 'new',
      batch: number(b.batch, `${path}.batch`, 1, 10_000, { integer: true }) ?? 100,
      blockMs: seconds(number(b.block, `${path}.block`, 0.01, 60), 2),
      claimIdleMs: seconds(number(b.claimIdle, `${path}.claimIdle`, 1, 86_400), 60),
    } as BridgeOptions;
  });
}

function mqttIdentity(value: unknown, path: string): MqttIdentity {
  if (value === undefined) return 'payload';
  if (value === 'payload' || value === 'none') return value;
  const o = object(value, path, ['jsonField', 'userProperty']);
  const jsonField = string(o?.jsonField, `${path}.jsonField`);
  const userProperty = string(o?.userProperty, `${path}.userProperty`);
  if ((jsonField === undefined) === (userProperty === undefined)) {
    fail(path, 'must be "payload", "none", {jsonField: NAME} or {userProperty: NAME}');
  }
  return jsonField !== undefined ? { jsonField } : { userProperty: userProperty as string };
}
