/** What a connection may do, decided once when its token is verified. */
import type { ChannelMatcher } from '@herald/protocol';
import type { HookClient } from '../hooks/types.js';

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
  /** The token's `jti`, when it has one: a revocation may name it. */
  readonly jti?: string;
  /** The token's `iat` (seconds since the epoch), when it has one: revocations by user compare it. */
  readonly issuedAt?: number;
  /** Set when hooks are configured: the client's transport, address and forwarded headers, for every hook call. */
  readonly hookClient?: HookClient;
  /** Authenticated by the connect hook (not a token): the refresh hook extends it. */
  readonly viaHook?: boolean;
  /** The token's `subs`: channels the hub subscribes every connection of the token to on connect. */
  readonly subs?: readonly string[];
}
