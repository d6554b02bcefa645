/**
 * Stream paths and Herald channels. A stream at `/ds/<path>` lives on the channel `ds:<path>`,
 * so Herald's own clients follow it by subscribing to that channel. Channel names allow
 * `A-Z a-z 0-9 _ . : @ / = -` and at most 200 characters (PROTOCOL.md section 2); every other
 * character of a path (after percent-decoding) is written as `=HH` per UTF-8 byte, and `=` itself
 * as `=3D`, so the mapping is one-to-one: two paths never share a channel.
 */
import { DsError } from './errors.js';

export const CHANNEL_PREFIX = 'ds:';
const MAX_CHANNEL = 200;
const KEPT = /[A-Za-z0-9_.:@/-]/;
/** Segments reserved by the protocol for its control APIs (subscriptions), which Herald does not serve. */
const RESERVED_SEGMENT = '__ds';

/**
 * The stream path of a request path below the mount (`v1/stream/x` for `/ds/v1/stream/x`):
 * segments percent-decoded, none empty, `.`, `..` or holding `/` or a control character.
 */
export function streamPath(rawBelowMount: string): string {
  if (rawBelowMount === '') throw new DsError(400, 'bad_request', 'a stream path is required after the mount');
  const segments = rawBelowMount.split('/');
  const decoded: string[] = [];
  for (const raw of segments) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      throw new DsError(400, 'bad_request', 'the stream path is not validly percent-encoded');
    }
    if (segment === '' || segment === '.' || segment === '..') {
      throw new DsError(400, 'bad_request', 'stream path segments must not be empty, "." or ".."');
    }
    if (segment.includes('/') || hasControl(segment)) {
      throw new DsError(400, 'bad_request', 'stream path segments must not hold "/" or control characters');
    }
    if (segment === RESERVED_SEGMENT) {
      throw new DsError(404, 'not_found', 'paths with a "__ds" segment are reserved for Durable Streams control APIs');
    }
    decoded.push(segment);
  }
  return decoded.join('/');
}

/** The channel of a stream path; 400 when the encoded name would pass 200 characters. */
export function channelForPath(path: string): string {
  let channel = CHANNEL_PREFIX;
  for (const char of path) {
    if (KEPT.test(char)) channel += char;
    else
      for (const byte of Buffer.from(char, 'utf8')) channel += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (channel.length > MAX_CHANNEL) {
    throw new DsError(
      400,
      'bad_request',
      `the stream path is too long (its channel ${channel.length} > 200 characters)`,
    );
  }
  return channel;
}

/** The stream path of a `ds:` channel; undefined for any other channel. */
export function pathForChannel(channel: string): string | undefined {
  if (!channel.startsWith(CHANNEL_PREFIX)) return undefined;
  const body = channel.slice(CHANNEL_PREFIX.length);
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const char = body[i] as string;
    if (char === '=') {
      const hex = body.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(char.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
