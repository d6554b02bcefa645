/** What a connection may do, decided once when its token is verified. */
import type { ChannelMatcher } from '@herald/protocol';

export interface Credentials {
  /** '' for an anonymous client. */
  readonly userId: string;
  readonly info?: unknown;
  /** `info` serialized once, for presence and publications. */
  readonly infoJson?: string;
  readonly canSubscribe: ChannelMatcher;
  readonly canPublish: ChannelMatcher;
  /** Epoch ms after which the connection must be ended (exp plus leeway); absent = never. */
  readonly expiresAt?: number;
}
