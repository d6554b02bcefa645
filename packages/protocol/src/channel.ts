/**
 * Channel names and the patterns that grant access to them (PROTOCOL.md section 2).
 */

/** A channel name: 1 to 200 characters from a URL- and header-safe alphabet. */
export const CHANNEL_NAME = /^[A-Za-z0-9_.:@/=-]{1,200}$/;

export function isValidChannel(value: unknown): value is string {
  return typeof value === 'string' && CHANNEL_NAME.test(value);
}

/** The part before the first `:`; a channel without `:` is its own namespace. */
export function channelNamespace(channel: string): string {
  const colon = channel.indexOf(':');
  return colon === -1 ? channel : channel.slice(0, colon);
}

/** A pattern is a channel name in which `*` matches any run of characters (also none). */
const PATTERN = /^[A-Za-z0-9_.:@/=*-]{1,200}$/;

export function isValidPattern(value: unknown): value is string {
  return typeof value === 'string' && PATTERN.test(value);
}

export type ChannelMatcher = (channel: string) => boolean;

const NOTHING: ChannelMatcher = () => false;

/**
 * Compiles patterns into one matcher. Invalid patterns are ignored rather than widened:
 * a token that grants `orders:[` grants nothing, never everything.
 */
export function compilePatterns(patterns: readonly string[] | undefined): ChannelMatcher {
  if (!patterns || patterns.length === 0) return NOTHING;
  const exact = new Set<string>();
  const wild: string[] = [];
  for (const pattern of patterns) {
    if (!isValidPattern(pattern)) continue;
    if (pattern.includes('*')) wild.push(pattern);
    else exact.add(pattern);
  }
  if (wild.length === 0) return exact.size === 0 ? NOTHING : (channel) => exact.has(channel);
  // Not a RegExp: `*a*a*a*a*ac` as `^.*a.*a.*a.*a.*ac$` backtracks exponentially, and a client
  // picks the channel name it is matched against (that pattern took 19 s on a 200-character name).
  return (channel) => exact.has(channel) || wild.some((pattern) => globMatch(pattern, channel));
}

/**
 * Whether `text` matches `pattern`, where `*` matches any run of characters and every other
 * character only itself. Greedy with a single backtrack point (the last `*`): at most
 * pattern length x text length steps, never exponential.
 */
function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.length && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (star !== -1) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
