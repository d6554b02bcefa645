/**
 * The `push` publish extension (docs/protocol-extensions.md): what a publication asks to be shown
 * to its user when that user has no live connection. Checked when the publish arrives, so a bad
 * section refuses the publish (400) before anything is stored.
 */
import { HeraldError } from '@herald/protocol';

export const URGENCIES = ['very-low', 'low', 'normal', 'high'] as const;
export type Urgency = (typeof URGENCIES)[number];

export interface PushSection {
  readonly title: string;
  readonly body?: string;
  /** Where a click takes the user: an absolute https URL or a path of the application. */
  readonly url?: string;
  readonly icon?: string;
  /** Notifications with the same tag replace each other on the device. */
  readonly tag?: string;
  /** Seconds the push service keeps the message for an unreachable device (RFC 8030 TTL). */
  readonly ttl?: number;
  readonly urgency?: Urgency;
  /** RFC 8030 Topic: a queued message with the same topic replaces the older one (base64url, 1-32). */
  readonly topic?: string;
}

/** Largest section, as JSON: the encrypted payload must stay under the 4 KiB push services accept. */
export const MAX_SECTION_BYTES = 3072;
const MAX_TTL_SECONDS = 28 * 86_400;
const KEYS = new Set(['title', 'body', 'url', 'icon', 'tag', 'ttl', 'urgency', 'topic']);

function bad(message: string): never {
  throw new HeraldError('bad_request', message);
}

function text(value: unknown, name: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    bad(`push.${name} must be a string of 1 to ${max} characters`);
  }
  return value;
}

export function parsePushSection(value: unknown): PushSection {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('push must be an object');
  const v = value as Record<string, unknown>;
  const unknown = Object.keys(v).find((k) => !KEYS.has(k));
  if (unknown !== undefined) bad(`push.${unknown} is not a known field (${[...KEYS].join(', ')})`);
  const title = text(v.title, 'title', 200);
  if (title === undefined) bad('push.title is required');
  const url = text(v.url, 'url', 2000);
  if (url !== undefined && !/^(https:\/\/|\/)/.test(url)) bad('push.url must start with https:// or /');
  const icon = text(v.icon, 'icon', 2000);
  if (icon !== undefined && !/^(https:\/\/|\/)/.test(icon)) bad('push.icon must start with https:// or /');
  const ttl = v.ttl;
  if (ttl !== undefined && (!Number.isInteger(ttl) || (ttl as number) < 0 || (ttl as number) > MAX_TTL_SECONDS)) {
    bad(`push.ttl must be a whole number of seconds from 0 to ${MAX_TTL_SECONDS}`);
  }
  const urgency = v.urgency;
  if (urgency !== undefined && !URGENCIES.includes(urgency as Urgency)) {
    bad(`push.urgency must be one of ${URGENCIES.join(', ')}`);
  }
  const topic = v.topic;
  if (topic !== undefined && (typeof topic !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(topic))) {
    bad('push.topic must be 1 to 32 base64url characters');
  }
  const section: PushSection = {
    title,
    ...(v.body === undefined ? {} : { body: text(v.body, 'body', 2000) as string }),
    ...(url === undefined ? {} : { url }),
    ...(icon === undefined ? {} : { icon }),
    ...(v.tag === undefined ? {} : { tag: text(v.tag, 'tag', 200) as string }),
    ...(ttl === undefined ? {} : { ttl: ttl as number }),
    ...(urgency === undefined ? {} : { urgency: urgency as Urgency }),
    ...(topic === undefined ? {} : { topic: topic as string }),
  };
  if (Buffer.byteLength(JSON.stringify(section)) > MAX_SECTION_BYTES) {
    throw new HeraldError('too_large', `push is larger than ${MAX_SECTION_BYTES} bytes as JSON`);
  }
  return section;
}

/** The publication a notification is about: enough for the service worker to open the right place. */
export interface PushPublicationRef {
  readonly channel: string;
  readonly offset: number;
  readonly epoch: string;
  readonly event?: string;
  readonly ts: number;
}

/**
 * The JSON the service worker receives (decrypted) as `event.data.json()`. Field order is fixed,
 * so the same publication always gives the same bytes.
 */
export function pushPayload(section: PushSection, pub: PushPublicationRef): string {
  return JSON.stringify({
    title: section.title,
    ...(section.body === undefined ? {} : { body: section.body }),
    ...(section.url === undefined ? {} : { url: section.url }),
    ...(section.icon === undefined ? {} : { icon: section.icon }),
    ...(section.tag === undefined ? {} : { tag: section.tag }),
    channel: pub.channel,
    offset: pub.offset,
    epoch: pub.epoch,
    ...(pub.event === undefined ? {} : { event: pub.event }),
    ts: pub.ts,
  });
}
