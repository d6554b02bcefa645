export { HeraldServer, type DrainOptions, type UpgradeHandler, type UpgradeHandlerOptions } from './server.js';
export { Admission, type AdmissionControl, type AdmissionOptions, type AdmissionVerdict } from './http/admission.js';
export { DEFAULTS, OptionsError, resolveOptions, type HeraldOptions } from './options.js';
export {
  Hub,
  type HubLimits,
  type PublishAnswer,
  type PublishInput,
  type PublishOutcome,
  type SubscribeOptions,
  type SubscribeOutcome,
} from './core/hub.js';
export {
  CommandSession,
  type Answer,
  type CommandPeer,
  type CommandSessionOptions,
  type Params,
  type ProtocolCommand,
} from './core/command-session.js';
export type { Pacer } from './core/replay.js';
export { TokenBucket, type RateLimit } from './core/token-bucket.js';

export type { Credentials } from './core/credentials.js';
export type { HubHooks, PublishExtensionParser, PublishExtensions } from './core/hooks.js';
export type { Session, SessionTransport, Subscription } from './core/session.js';
export { Delivery, defineEncoder, type Encoder } from './core/delivery.js';
export { TRANSPORTS, type HubStatsView, type TransportKind } from './core/stats.js';
export { isRecoverable, mergeRecovery, type StreamBounds } from './core/recovery.js';
export { coveredFrom, openStreamsSoFar, rollUp, streamIdOf } from './core/roll-up.js';
export { streamMember, streamPart, type StreamPart } from './core/stream-part.js';
export {
  IDEMPOTENCY_WINDOW_MS,
  type Broker,
  type BrokerEvents,
  type ChannelCount,
  type ControlMessage,
  type ConnectionTarget,
  type NodeRequest,
  type NodeReplies,
  type HistoryLimits,
  type HistoryQuery,
  type HistoryResult,
  type MetadataEntry,
  type MetadataStore,
  type PresenceStore,
  type PublicationRecord,
  type PublishDraft,
  type PublishResult,
  TopConflictError,
} from './broker/broker.js';
export { MemoryBroker, newEpoch, type MemoryBrokerOptions } from './broker/memory-broker.js';
export { pageLength, pageWithin } from './broker/page.js';
export { MemoryMetadata } from './broker/memory-metadata.js';
export { KeyedQueue } from './keyed-queue.js';
export {
  PUBLISH_QUEUE_DEFAULTS,
  admitPublish,
  publishQueueLimits,
  type PublishQueueLimits,
} from './broker/publish-queue.js';
export { MemoryPresence } from './presence/memory-presence.js';
export { TokenVerifier, type TokenVerifierOptions } from './auth/tokens.js';
export {
  PUBLIC_KEY_ALGORITHMS,
  PublicKeyError,
  parsePublicKeys,
  type PublicKeyAlgorithm,
  type PublicKeyEntry,
} from './auth/public-keys.js';
export {
  combine as combineRevocations,
  parseRevocation,
  revocationKey,
  type Revocation,
  type RevocationPolicy,
  type RevocationStore,
  type RevokeInput,
} from './revocation/revocation.js';
export { MemoryRevocationStore } from './revocation/memory-store.js';
export { REVOKED, Revocations } from './revocation/revocations.js';
export { channelRefusal, requireChannel, type ChannelAction } from './auth/channel-access.js';
export {
  authenticate,
  checkOrigin,
  corsHeaders,
  disconnectJson,
  hookClientOf,
  upgradeAllowed,
  type TransportContext,
} from './transports/context.js';
export { BackendHooks } from './hooks/backend-hooks.js';
export { hookedPublish, rpc, subscribeGrant } from './hooks/decisions.js';
export { HOOK_SIGNATURE_HEADER, signHookBody } from './hooks/signature.js';
export type {
  ConnectHookAnswer,
  HookAnswers,
  HookClient,
  HookEndpoint,
  HookFunction,
  HookName,
  HookRefusal,
  HookRequest,
  HooksOptions,
  PublishHookAnswer,
  RefreshHookAnswer,
  RpcHookAnswer,
  SubscribeHookAnswer,
} from './hooks/types.js';
export { drainedBelow } from './transports/drain.js';
export { parsePosition } from './core/params.js';
export { textFrame } from './transports/ws-frame.js';
export {
  answerInTurn,
  batchWrite,
  flushThreshold,
  gateWrites,
  holdTurnFor,
  heldBytes,
  releaseHeld,
  writeBatched,
  type WriteGate,
} from './transports/turn-batch.js';
export { readBodyBytes, readJsonBody } from './http/body.js';
export { bearerToken, requestToken } from './http/credentials.js';
export { refuseUpgrade, sendError } from './http/respond.js';
export { ApiKey } from './auth/api-key.js';
export { isOriginAllowed, originPolicy, type OriginPolicy } from './auth/origin.js';
export { attachHerald, type AttachOptions } from './embed/attach.js';
export { heraldFetchHandler, type FetchHandler, type FetchHandlerOptions } from './embed/fetch.js';
export { NodeRequests, answerRequest, type AnswerEnvelope, type RequestEnvelope } from './broker/node-requests.js';
