/**
 * `@herald/server-client`: a typed client for Herald's server API (publish, history, presence,
 * channels, revoke, and the actions on live connections), with idempotent retries and typed errors. Depends on nothing but `fetch`.
 */
export { HeraldServerClient, newIdempotencyKey, type HeraldServerClientOptions } from './client.js';
export { HeraldApiError, type ClientErrorCode, type HeraldApiErrorCode, type HeraldApiErrorDetails } from './errors.js';
export { channelPath, type CallOptions, type Endpoint, type HttpMethod, type RetryEvent } from './request.js';
export { RETRY_DEFAULTS, isTransient, retryDelay, type RetryOptions } from './retry.js';
export type {
  ChannelActionInput,
  Connection,
  ConnectionTarget,
  ConnectionsQuery,
  ConnectionsResult,
  DisconnectInput,
  DisconnectResult,
  InfoResult,
  NodeInfo,
  PresenceStatsResult,
  SubscribeResult,
  Unanswered,
  UnsubscribeResult,
  ChannelsResult,
  ClientInfo,
  HistoryQuery,
  HistoryResult,
  Position,
  PresenceResult,
  Publication,
  PublishInput,
  PublishResult,
  RevokeInput,
  RevokeResult,
} from './types.js';
