/**
 * @herald/react: React 18 and 19 bindings for the Herald client. See README.md.
 */
export {
  HeraldContext,
  HeraldProvider,
  useHerald,
  type HeraldContextValue,
  type HeraldProviderProps,
} from './context.js';
export {
  useChannel,
  useConnectionState,
  usePresence,
  usePublish,
  type ChannelView,
  type PublishFunction,
  type UseChannelOptions,
} from './hooks.js';
export type { ChannelListener } from './channels.js';
