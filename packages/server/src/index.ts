export { HeraldServer, type DrainOptions, type UpgradeHandler, type UpgradeHandlerOptions } from './server.js';
export type { AdmissionVerdict } from './http/admission.js';
export { DEFAULTS, OptionsError, resolveOptions, type HeraldOptions } from './options.js';
export { Hub, type HubLimits, type PublishInput, type SubscribeOutcome } from './core/hub.js';
export type { Credentials } from './core/credentials.js';
export type { HubHooks, PublishExtensionParser, PublishExtensions } from './core/hooks.js';
export type { Session, SessionTransport, Subscription } from './core/session.js';
export { Delivery, defineEncoder, type Encoder } from './core/delivery.js';
export { TRANSPORTS, type TransportKind } from './core/stats.js';
export { isRecoverable, mergeRecovery, type StreamBounds } from './core/recovery.js';
export {
  IDEMPOTENCY_WINDOW_MS,
  type Broker,
  type BrokerEvents,
  type ChannelCount,
  type ControlMessage,
  type HistoryLimits,
  type HistoryQuery,
  type HistoryResult,
  type PresenceStore,
  type PublicationRecord,
  type PublishDraft,
  type PublishResult,
} from './broker/broker.js';
export { MemoryBroker, newEpoch, type MemoryBrokerOptions } from './broker/memory-broker.js';
export { MemoryPresence } from './presence/memory-presence.js';
export { TokenVerifier, type TokenVerifierOptions } from './auth/tokens.js';
export { authenticate, checkOrigin, corsHeaders, disconnectJson, type TransportContext } from './transports/context.js';
export { historyJson, historyParams, parsePosition, subscribeParams } from './transports/answers.js';
export { textFrame } from './transports/ws-frame.js';
export { readJsonBody } from './http/body.js';
export { refuseUpgrade, sendError } from './http/respond.js';
export { ApiKey } from './auth/api-key.js';
export { isOriginAllowed, originPolicy, type OriginPolicy } from './auth/origin.js';
