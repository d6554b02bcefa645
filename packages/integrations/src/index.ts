/**
 * @herald/integrations: reaching users who are not connected, and bringing outside messages in.
 * Webhooks (presence and client publications), Web Push for offline users, ingress bridges
 * (MQTT, NATS, Redis Streams). See docs/integrations.md.
 */
export { startIntegrations, type Integrations, type StartContext } from './start.js';
export {
  DEFAULT_PUSH_HOSTS,
  resolveIntegrationsOptions,
  type BridgeOptions,
  type IntegrationsOptions,
  type PushOptionsResolved,
  type WebhookOptions,
} from './options.js';

export type { CloseOptions, ConnectionRegistry, TrackedKind, Transition } from './presence/connection-registry.js';
export {
  MemoryConnectionRegistry,
  MemoryRegistryState,
  type MemoryRegistryOptions,
} from './presence/memory-registry.js';
export { RedisConnectionRegistry, type RedisRegistryOptions } from './presence/redis-registry.js';
export { NatsConnectionRegistry, type NatsRegistryOptions } from './presence/nats-registry.js';
export { ConnectionTracker, type TrackerOptions, type TransitionListener } from './presence/tracker.js';

export {
  DEFAULT_TOLERANCE_SECONDS,
  SIGNATURE_HEADER,
  WebhookSignatureError,
  signWebhook,
  verifyWebhook,
  type VerifyOptions,
  type WebhookSignatureErrorCode,
} from './webhooks/signature.js';
export { WEBHOOK_EVENT_TYPES, createEvent, type OutgoingEvent, type WebhookEventType } from './webhooks/events.js';
export { WebhookDispatcher, type WebhookDispatcherOptions } from './webhooks/dispatcher.js';
export { DeadLetterLog, type DeadLetter, type DeadLetterReason } from './webhooks/dead-letter.js';
export { WebhookService, type WebhookFilter } from './webhooks/service.js';
export { DropOldestQueue } from './webhooks/queue.js';
export type { Claim, Outbox } from './webhooks/outbox.js';
export { MemoryOutbox } from './webhooks/memory-outbox.js';
export { RedisOutbox, type RedisOutboxOptions } from './webhooks/redis-outbox.js';
export { NatsOutbox, type NatsOutboxOptions } from './webhooks/nats-outbox.js';
export { backoffDelay } from './webhooks/backoff.js';

export { parsePushSection, pushPayload, type PushSection, type Urgency } from './push/section.js';
export { parsePreferences, inQuietHours, isMuted, type PushPreferences, type QuietHours } from './push/preferences.js';
export type { PushStore, PushSubscriptionRecord, VapidKeys } from './push/store.js';
export { MemoryPushStore } from './push/memory-store.js';
export { RedisPushStore, type RedisPushStoreOptions } from './push/redis-store.js';
export { NatsPushStore, type NatsPushStoreOptions } from './push/nats-store.js';
export { WebPushSender, generateVapidKeys, type PushOutcome, type VapidDetails } from './push/sender.js';
export { PushNotifier, type PushDecision, type PushNotifierOptions } from './push/notifier.js';
export { pushRoutes, pushSubscriptionId, type PushRoutesOptions } from './push/routes.js';
export { compileUserChannels, type UserChannelMatcher } from './push/user-channels.js';

export type { Bridge, BridgeMessage, IngestOutcome } from './bridges/ingest.js';
export { BridgeIngest, bridgeCounter } from './bridges/ingest.js';
export { MqttBridge, type MqttBridgeOptions, type MqttIdentity, type MqttRouteOptions } from './bridges/mqtt.js';
export { NatsBridge, type NatsBridgeOptions, type NatsRouteOptions } from './bridges/nats.js';
export {
  RedisStreamBridge,
  type RedisStreamBridgeOptions,
  type RedisStreamRouteOptions,
} from './bridges/redis-streams.js';
export { compileTemplate, mqttPattern, natsPattern, decodePayload, type Decoding } from './bridges/mapping.js';
