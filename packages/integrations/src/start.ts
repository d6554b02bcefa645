/**
 * Composes the integrations on a running HeraldServer from the `integrations` config section:
 * the connection registry and tracker (when webhooks want presence events, or push needs to know
 * who is offline), webhooks, Web Push with its routes, and the ingress bridges. Only what is
 * configured is started; an empty section starts nothing and opens no connection.
 */
import type { HeraldServer } from '@herald/server';
import { compilePatterns } from '@herald/protocol';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { bridgeCounter, type Bridge } from './bridges/ingest.js';
import { MqttBridge } from './bridges/mqtt.js';
import { NatsBridge } from './bridges/nats.js';
import { RedisStreamBridge } from './bridges/redis-streams.js';
import { resolveIntegrationsOptions, type BridgeOptions, type IntegrationsOptions } from './options.js';
import type { ConnectionRegistry } from './presence/connection-registry.js';
import { MemoryConnectionRegistry } from './presence/memory-registry.js';
import { NatsConnectionRegistry } from './presence/nats-registry.js';
import { RedisConnectionRegistry } from './presence/redis-registry.js';
import { ConnectionTracker } from './presence/tracker.js';
import { MemoryPushStore } from './push/memory-store.js';
import { NatsPushStore } from './push/nats-store.js';
import { PushNotifier } from './push/notifier.js';
import { RedisPushStore } from './push/redis-store.js';
import { pushRoutes } from './push/routes.js';
import { WebPushSender, generateVapidKeys } from './push/sender.js';
import type { PushStore } from './push/store.js';
import { compileUserChannels } from './push/user-channels.js';
import { DeadLetterLog } from './webhooks/dead-letter.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { MemoryOutbox } from './webhooks/memory-outbox.js';
import { NatsOutbox } from './webhooks/nats-outbox.js';
import type { Outbox } from './webhooks/outbox.js';
import { RedisOutbox } from './webhooks/redis-outbox.js';
import { WebhookService } from './webhooks/service.js';

export interface StartContext {
  /** Defaults to the server's logger. */
  readonly logger?: Logger;
  /** HERALD_BROKER: shared state follows it unless the section names a registry or store. */
  readonly brokerUrl?: string;
}

export interface Integrations {
  readonly options: IntegrationsOptions;
  readonly tracker: ConnectionTracker | undefined;
  readonly webhooks: WebhookService | undefined;
  readonly push: PushNotifier | undefined;
  readonly bridges: readonly Bridge[];
  /**
   * Stops bridges (unacknowledged messages stay with their source), push, the tracker (this node
   * leaves the registry) and the webhook queue (sent within a grace period, the rest dead-lettered).
   */
  close(): Promise<void>;
}

export async function startIntegrations(
  server: HeraldServer,
  config: unknown,
  context: StartContext = {},
): Promise<Integrations> {
  const options = resolveIntegrationsOptions(config ?? {}, context.brokerUrl);
  const logger = (context.logger ?? server.logger).child({ component: 'integrations' });
  const hub = server.hub;
  const metrics = server.metrics;
  const closers: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const step of closers.splice(0).reverse()) {
      await step().catch((error: unknown) => logger.warn({ err: error }, 'integration did not close cleanly'));
    }
  };
  try {
    const w = options.webhooks;
    const webhooks =
      w === undefined
        ? undefined
        : new WebhookService(
            new WebhookDispatcher({
              url: w.url,
              secrets: w.secrets,
              timeoutMs: w.timeoutMs,
              maxAttempts: w.maxAttempts,
              retryBaseMs: w.retryBaseMs,
              retryMaxMs: w.retryMaxMs,
              queueSize: w.queueSize,
              concurrency: w.concurrency,
              deadLetter: new DeadLetterLog(w.deadLetterFile, logger),
              logger,
              registry: metrics,
              outbox: createOutbox(w.outbox, options.namespace, w.queueSize, w.claimIdleMs),
            }),
            { events: w.events, channels: compilePatterns(w.channels) },
          );
    if (webhooks !== undefined) {
      closers.push(() => webhooks.dispatcher.close());
      await webhooks.dispatcher.start();
    }

    let tracker: ConnectionTracker | undefined;
    if (webhooks?.wantsPresence === true || options.push !== undefined) {
      tracker = new ConnectionTracker(
        hub,
        createRegistry(options),
        {
          offlineDelayMs: w?.offlineDelayMs ?? 5000,
          vacatedDelayMs: w?.vacatedDelayMs ?? 5000,
          sweepIntervalMs: options.sweepIntervalMs,
        },
        logger,
      );
      const t = tracker;
      metrics.removeSingleMetric('herald_presence_registry_errors_total');
      new Counter({
        name: 'herald_presence_registry_errors_total',
        help: 'Connection registry calls that failed (Redis or NATS unreachable).',
        registers: [metrics],
        collect() {
          this.reset();
          this.inc(t.errors);
        },
      });
      await t.start();
      closers.push(() => t.close());
    }
    webhooks?.attach(hub, tracker);
    if (webhooks !== undefined) closers.push(async () => webhooks.detach());

    let push: PushNotifier | undefined;
    const p = options.push;
    if (p !== undefined && tracker !== undefined) {
      const store = createPushStore(p.store, options.namespace);
      await store.start();
      closers.push(() => store.close());
      if (store.name === 'memory' && options.registry !== 'memory') {
        logger.warn(
          { registry: options.registry },
          'push: subscriptions are kept in this process only; with several nodes set integrations.push.store to redis:// or nats://',
        );
      }
      const keys =
        p.vapid.publicKey !== undefined && p.vapid.privateKey !== undefined
          ? { publicKey: p.vapid.publicKey, privateKey: p.vapid.privateKey }
          : await store.sharedVapidKeys(generateVapidKeys());
      if (p.vapid.publicKey === undefined) {
        logger.warn(
          { store: store.name },
          store.name === 'memory'
            ? 'push: no VAPID keys configured; generated a pair that dies with this process (subscriptions will not survive a restart)'
            : 'push: no VAPID keys configured; using the pair shared through the store',
        );
      }
      const notifier = new PushNotifier(
        store,
        new WebPushSender({ subject: p.vapid.subject, ...keys }, p.timeoutMs),
        tracker.registry,
        {
          userChannels: compileUserChannels(p.userChannels),
          allowClientPush: p.allowClientPush,
          rateLimit: p.rateLimit,
          defaultTtlSeconds: p.defaultTtlSeconds,
          dedupeTtlSeconds: 3600,
          queueSize: p.queueSize,
          concurrency: p.concurrency,
          maxAttempts: p.maxAttempts,
          retryBaseMs: 500,
          maxSubscriptionsPerUser: p.maxSubscriptionsPerUser,
        },
        logger,
        metrics,
      );
      notifier.attach(hub);
      const removeRoutes = server.addRoutes(
        pushRoutes(server.context, notifier, {
          allowInsecureEndpoints: p.allowInsecureEndpoints,
          endpointHosts: p.endpointHosts,
        }),
      );
      closers.push(async () => {
        removeRoutes();
        await notifier.close();
      });
      push = notifier;
    }

    const bridges: Bridge[] = [];
    const messages = bridgeCounter(metrics);
    for (const b of options.bridges) {
      const bridge = createBridge(b, server, logger, messages);
      await bridge.start();
      bridges.push(bridge);
      closers.push(() => bridge.close());
    }
    logger.info(
      {
        registry: tracker?.registry.name,
        webhooks: webhooks?.dispatcher.outbox.name,
        push: push !== undefined,
        bridges: bridges.map((b) => `${b.type}:${b.name}`),
      },
      'integrations started',
    );
    return { options, tracker, webhooks, push, bridges, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function createRegistry(options: IntegrationsOptions): ConnectionRegistry {
  const url = options.registry;
  const timing = { nodeTtlMs: options.nodeTtlMs };
  if (/^rediss?:\/\//.test(url)) {
    return new RedisConnectionRegistry({ url, prefix: `herald:{${options.namespace}}:presence:`, ...timing });
  }
  if (url.startsWith('nats://')) {
    return new NatsConnectionRegistry({ url, bucket: `herald_presence_${options.namespace}`, ...timing });
  }
  return new MemoryConnectionRegistry(timing);
}

function createPushStore(url: string, namespace: string): PushStore {
  if (/^rediss?:\/\//.test(url)) return new RedisPushStore({ url, prefix: `herald:{${namespace}}:push:` });
  if (url.startsWith('nats://')) return new NatsPushStore({ url, bucket: `herald_push_${namespace}` });
  return new MemoryPushStore();
}

/** Webhook events wait where shared state lives, so they outlive the node that created them. */
function createOutbox(url: string, namespace: string, capacity: number, claimIdleMs: number): Outbox {
  if (/^rediss?:\/\//.test(url)) {
    return new RedisOutbox({ url, prefix: `herald:{${namespace}}:webhooks:`, capacity, claimIdleMs });
  }
  if (url.startsWith('nats://')) return new NatsOutbox({ url, namespace, capacity, claimIdleMs });
  return new MemoryOutbox(capacity);
}

function createBridge(
  options: BridgeOptions,
  server: HeraldServer,
  logger: Logger,
  messages: ReturnType<typeof bridgeCounter>,
): Bridge {
  switch (options.type) {
    case 'mqtt':
      return new MqttBridge(options, server.hub, logger, messages);
    case 'nats':
      return new NatsBridge(options, server.hub, logger, messages);
    case 'redis-stream':
      return new RedisStreamBridge(options, server.hub, logger, messages);
  }
}
