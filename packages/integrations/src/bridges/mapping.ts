/**
 * From an external message's address to a channel: wildcard patterns with captures (MQTT `+`/`#`,
 * NATS `*`/`>`) and channel templates such as `sensors:{1}`. Pure and checked at start: a
 * template may only use captures its pattern has. The result is validated per message (a topic
 * level with a space gives no valid channel, and the message is dropped and counted).
 */
import { isValidChannel } from '@herald/protocol';

export type Captures = readonly string[];

export interface AddressPattern {
  readonly pattern: string;
  /** Number of wildcards, i.e. captures `{1}` ... `{n}`. */
  readonly captures: number;
  /** The captures when `address` matches, else undefined. */
  match(address: string): Captures | undefined;
}

/**
 * MQTT topic filter: `+` is one level, `#` (last) the remaining levels, zero included; its capture
 * is those levels joined with `/`. As MQTT says, wildcards do not match topics starting with `$`.
 */
export function mqttPattern(filter: string): AddressPattern {
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if ((level.includes('+') && level !== '+') || (level.includes('#') && (level !== '#' || i !== levels.length - 1))) {
      throw new Error(`"${filter}" is not a valid MQTT topic filter`);
    }
  });
  const captures = levels.filter((l) => l === '+' || l === '#').length;
  return {
    pattern: filter,
    captures,
    match(topic) {
      if (captures > 0 && topic.startsWith('$') && (levels[0] === '+' || levels[0] === '#')) return undefined;
      const parts = topic.split('/');
      const out: string[] = [];
      for (let i = 0; i < levels.length; i++) {
        const level = levels[i] as string;
        if (level === '#') {
          out.push(parts.slice(i).join('/'));
          return out;
        }
        const part = parts[i];
        if (part === undefined) return undefined;
        if (level === '+') out.push(part);
        else if (level !== part) return undefined;
      }
      return parts.length === levels.length ? out : undefined;
    },
  };
}

/** NATS subject: `*` is one token, `>` (last) one or more tokens, captured joined with `.`. */
export function natsPattern(subject: string): AddressPattern {
  const tokens = subject.split('.');
  tokens.forEach((token, i) => {
    if (
      token === '' ||
      (token.includes('*') && token !== '*') ||
      (token.includes('>') && (token !== '>' || i !== tokens.length - 1))
    ) {
      throw new Error(`"${subject}" is not a valid NATS subject`);
    }
  });
  const captures = tokens.filter((t) => t === '*' || t === '>').length;
  return {
    pattern: subject,
    captures,
    match(address) {
      const parts = address.split('.');
      const out: string[] = [];
      for (let i = 0; i < tokens.length; i++) {
        const token = tokens[i] as string;
        if (token === '>') {
          if (parts.length <= i) return undefined;
          out.push(parts.slice(i).join('.'));
          return out;
        }
        const part = parts[i];
        if (part === undefined) return undefined;
        if (token === '*') out.push(part);
        else if (token !== part) return undefined;
      }
      return parts.length === tokens.length ? out : undefined;
    },
  };
}

/** Values a template may name besides captures: `{topic}`, `{subject}`, `{stream}`, `{field.NAME}`. */
export interface TemplateVars {
  readonly captures: Captures;
  readonly named?: Readonly<Record<string, string>>;
}

export type Template = (vars: TemplateVars) => string;

/**
 * Compiles `sensors:{1}` style templates. `names` lists the named variables allowed (a name
 * ending in `.` allows any suffix, e.g. `field.`). Throws a message naming what is wrong.
 */
export function compileTemplate(template: string, captures: number, names: readonly string[]): Template {
  const pieces: Array<string | { capture: number } | { name: string }> = [];
  let last = 0;
  for (const m of template.matchAll(/\{([^{}]*)\}/g)) {
    pieces.push(template.slice(last, m.index));
    const ref = m[1] as string;
    if (/^\d+$/.test(ref)) {
      const n = Number(ref);
      if (n < 1 || n > captures)
        throw new Error(`"${template}" uses {${ref}} but the pattern has ${captures} wildcard(s)`);
      pieces.push({ capture: n - 1 });
    } else if (
      names.some((name) => name === ref || (name.endsWith('.') && ref.startsWith(name) && ref.length > name.length))
    ) {
      pieces.push({ name: ref });
    } else {
      throw new Error(
        `"${template}" uses {${ref}}; allowed: {1}..{${captures}}, ${names.map((n) => `{${n}${n.endsWith('.') ? 'NAME' : ''}}`).join(', ')}`,
      );
    }
    last = m.index + m[0].length;
  }
  pieces.push(template.slice(last));
  if (/[{}]/.test(pieces.filter((p) => typeof p === 'string').join('')))
    throw new Error(`"${template}" has an unbalanced brace`);
  return ({ captures: values, named }) =>
    pieces
      .map((p) => (typeof p === 'string' ? p : 'capture' in p ? (values[p.capture] ?? '') : (named?.[p.name] ?? '')))
      .join('');
}

/** A route: which addresses it takes and how it names the channel (and the event). */
export interface CompiledRoute {
  readonly address: AddressPattern;
  readonly channel: Template;
  readonly event: Template | undefined;
  readonly decode: Decoding;
}

export type Decoding = 'json' | 'text' | 'auto';

/** What every bridge's route configuration has besides its source address. */
export interface RouteTargetOptions {
  readonly channel: string;
  readonly event?: string;
  readonly decode?: Decoding;
}

/**
 * Compiles one route: `address` is the source pattern, and `name` the template variable that holds
 * the whole source address (`topic` for MQTT, `subject` for NATS).
 */
export function compileRoute(address: AddressPattern, target: RouteTargetOptions, name: string): CompiledRoute {
  return {
    address,
    channel: compileTemplate(target.channel, address.captures, [name]),
    event: target.event === undefined ? undefined : compileTemplate(target.event, address.captures, [name]),
    decode: target.decode ?? 'auto',
  };
}

/** The channel and event for a message, or an error string when the channel is not valid. */
export function resolveTarget(
  route: CompiledRoute,
  vars: TemplateVars,
): { channel: string; event?: string } | { error: string } {
  const channel = route.channel(vars);
  if (!isValidChannel(channel)) return { error: `"${channel}" is not a valid channel name` };
  if (route.event === undefined) return { channel };
  const event = route.event(vars);
  return event === '' ? { channel } : { channel, event };
}

/** The payload as publication data: JSON, text, or JSON when it parses (auto). */
export function decodePayload(payload: Uint8Array, decoding: Decoding): { data: unknown } | { error: string } {
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  if (decoding === 'text') return { data: text };
  try {
    return { data: JSON.parse(text) };
  } catch {
    return decoding === 'auto' ? { data: text } : { error: 'the payload is not JSON' };
  }
}
