/**
 * Pusher channel names, their types, and where they live among Herald's channels.
 *
 * The mapping (docs/pusher.md, "Channels"): the Pusher channel `name` of the app with id `ID` is
 * the Herald channel `pusher:ID:name`, with the three characters a Pusher name may hold and a
 * Herald name may not written as `/` and their hex code (`,` → `/2C`, `;` → `/3B`, `#` → `/23`;
 * `/` itself never occurs in a Pusher name, so the mapping is one to one). So
 * `private-orders.42` of app `123` is `pusher:123:private-orders.42`, which Herald's own clients
 * follow with a JWT granting `pusher:123:*` (or narrower). Apps are isolated: a Pusher connection
 * or API request only ever names channels under its own app's prefix.
 */

export type ChannelType = 'public' | 'private' | 'encrypted' | 'presence' | 'user';

/** Pusher's rule: 1 to 164 of `A-Z a-z 0-9 _ - = @ , . ;` (and `#` for the reserved `#server-to-user-` channels). */
const PUSHER_NAME = /^[A-Za-z0-9_\-=@,.;]{1,164}$/;
const USER_PREFIX = '#server-to-user-';

export function isValidPusherChannel(name: unknown): name is string {
  if (typeof name !== 'string') return false;
  if (name.startsWith(USER_PREFIX))
    return name.length <= 164 + USER_PREFIX.length && PUSHER_NAME.test(name.slice(USER_PREFIX.length));
  return PUSHER_NAME.test(name);
}

export function channelType(name: string): ChannelType {
  if (name.startsWith('private-encrypted-')) return 'encrypted';
  if (name.startsWith('private-')) return 'private';
  if (name.startsWith('presence-')) return 'presence';
  if (name.startsWith(USER_PREFIX)) return 'user';
  return 'public';
}

/** Whether `name` is a cache channel (`cache-`, `private-cache-`, `private-encrypted-cache-`, `presence-cache-`). */
export function isCacheChannel(name: string): boolean {
  return /^(?:private-encrypted-|private-|presence-)?cache-/.test(name);
}

/** The channel on which the server sends to one signed-in user (pusher-js subscribes to it after `pusher:signin`). */
export function userChannel(userId: string): string {
  return USER_PREFIX + userId;
}

/** The Herald namespace of an app's channels, `pusher:ID:`. */
export function appPrefix(appId: string): string {
  return `pusher:${appId}:`;
}

const ESCAPES: Readonly<Record<string, string>> = { ',': '/2C', ';': '/3B', '#': '/23' };
const UNESCAPES: Readonly<Record<string, string>> = { '/2C': ',', '/3B': ';', '/23': '#' };

/** The Herald channel of an app's Pusher channel (see the mapping above). */
export function heraldChannel(appId: string, name: string): string {
  return appPrefix(appId) + name.replace(/[,;#]/g, (c) => ESCAPES[c] ?? c);
}

/** The Pusher channel of a Herald channel under `prefix` (`appPrefix`), or undefined when it is not one. */
export function pusherChannel(prefix: string, channel: string): string | undefined {
  if (!channel.startsWith(prefix)) return undefined;
  const name = channel.slice(prefix.length);
  return name.includes('/') ? name.replace(/\/(?:2C|3B|23)/g, (e) => UNESCAPES[e] ?? e) : name;
}

/** The app id of a Herald channel in some app's namespace, or undefined. */
export function appIdOf(channel: string): string | undefined {
  if (!channel.startsWith('pusher:')) return undefined;
  const end = channel.indexOf(':', 7);
  return end === -1 ? undefined : channel.slice(7, end);
}
