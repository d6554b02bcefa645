/**
 * Which channels belong to one user: templates such as `user:{userId}` or `inbox:{userId}:*`
 * (`*` = any run of characters), checked once at start. A publication on such a channel is
 * pushed to that user when they have no live connection.
 */
const PLACEHOLDER = '{userId}';

export type UserChannelMatcher = (channel: string) => string | undefined;

/** Throws a message naming the template when it is not usable. */
export function compileUserChannels(templates: readonly string[]): UserChannelMatcher {
  const regexes = templates.map((template) => {
    const parts = template.split(PLACEHOLDER);
    if (parts.length !== 2) throw new Error(`"${template}" must contain ${PLACEHOLDER} exactly once`);
    if (!parts.every((p) => /^[A-Za-z0-9_.:@/=*-]*$/.test(p))) {
      throw new Error(`"${template}" may only hold channel-name characters, * and ${PLACEHOLDER}`);
    }
    const pattern = (p: string): string => p.replace(/[.*+?^${}()|[\]\\/-]/g, (c) => (c === '*' ? '.*' : `\\${c}`));
    return new RegExp(`^${pattern(parts[0] as string)}(.+?)${pattern(parts[1] as string)}$`);
  });
  return (channel) => {
    for (const regex of regexes) {
      const userId = regex.exec(channel)?.[1];
      if (userId !== undefined) return userId;
    }
    return undefined;
  };
}
