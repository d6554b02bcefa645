/**
 * @herald/client: the Herald SDK for browsers and Node.js, on Web-standard APIs only
 * (WebSocket, fetch, AbortSignal, timers). See README.md.
 */
export {
  Herald,
  type ClientEvents,
  type ClientState,
  type HistoryOptions,
  type HistoryResult,
  type PublishOptions,
} from './client.js';
export { HeraldClientError, type ClientErrorCode, type HeraldErrorCode } from './errors.js';
export type { HeraldOptions } from './options.js';
export type { RequestOptions } from './requests.js';
export {
  Subscription,
  type Publication,
  type RecoveredEvent,
  type StreamText,
  type SubscribeOptions,
  type SubscriptionEvents,
  type SubscriptionState,
} from './subscription.js';
export type { TokenSource } from './token.js';
export type { TransportName, WebSocketConstructor, WebSocketLike } from './transports/transport.js';
export type { ClientInfo, Position } from '@herald/protocol';
