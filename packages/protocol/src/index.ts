export {
  CHANNEL_NAME,
  channelNamespace,
  compilePatterns,
  isValidChannel,
  isValidPattern,
  type ChannelMatcher,
} from './channel.js';
export {
  CLOSE_CODES,
  CloseCode,
  ERROR_CODES,
  HeraldError,
  isErrorCode,
  UnsubscribeCode,
  type CloseCodeInfo,
  type ErrorCode,
  type WireError,
} from './codes.js';
export {
  errorReplyJson,
  parseCommand,
  publicationJson,
  pubPushJson,
  replyJson,
  type CommandParse,
  type PublicationFields,
} from './codec.js';
export { cursorEntry, decodeCursor, encodeCursor, isValidEpoch } from './cursor.js';
export {
  METHODS,
  type ChannelState,
  type ClientInfo,
  type Command,
  type DisconnectInfo,
  type Method,
  type Position,
  type Publication,
  type Push,
} from './types.js';
