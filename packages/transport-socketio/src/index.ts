/**
 * Socket.IO clients on the Herald hub: `attachSocketIo(server)` serves them under `/socket.io/`
 * with the hub's channels, permissions, presence, history, resume and backpressure. The events
 * and payloads are documented in docs/socketio.md.
 */
export { attachSocketIo, type SocketIoAttachment, type SocketIoOptions, type SocketIoTransportName } from './attach.js';
export {
  CLIENT_RESERVED_EVENTS,
  COMMANDS,
  HERALD_EVENTS,
  MESSAGE_EVENT,
  publicationEventName,
  type Ack,
  type CommandName,
  type ConnectErrorData,
  type ConnectedEvent,
  type DisconnectEvent,
  type ErrorEvent,
  type HistoryParams,
  type HistoryResult,
  type JoinLeaveEvent,
  type PublishParams,
  type PublishResult,
  type SubscribeParams,
  type SubscribeResult,
  type UnsubscribedEvent,
} from './events.js';
export { publicationPacketText } from './packet.js';
