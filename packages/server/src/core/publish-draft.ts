/**
 * Checks a publish as it arrives from the wire (HTTP API, a client command) and turns it into the
 * draft a broker stores: pure, so every path that publishes refuses the same input with the same
 * error, and `data` is serialized exactly once.
 */
import { HeraldError, isValidChannel } from '@herald/protocol';
import type { PublishDraft } from '../broker/broker.js';
import type { Credentials } from './credentials.js';
import { streamMember } from './stream-part.js';

/** Publish parameters as they arrive from the wire; every field is checked here. */
export interface PublishInput {
  readonly channel?: unknown;
  readonly data?: unknown;
  readonly event?: unknown;
  readonly ephemeral?: unknown;
  readonly idempotencyKey?: unknown;
  /** `{"status": "open"}`: this publication opens a text stream (docs/streams.md). */
  readonly stream?: unknown;
  /** `{"to", "status"?}`: this publication appends to a text stream. */
  readonly append?: unknown;
  // Extension fields (see `Hub.addPublishExtension`) ride along; fields nobody registered are ignored.
}

/** The namespace of the hub's own channels (the admin feed): only the hub publishes there. */
export const RESERVED_NAMESPACE = '_herald:';

/**
 * The protocol's only rule for event names is the reserved `herald.` prefix. Beyond it, a name is
 * text (any script) without control characters: CR or LF would break an SSE `event:` line. The
 * length cap keeps a name from outweighing the data limit it is not counted in.
 */
const MAX_EVENT_NAME = 1000;
const MAX_IDEMPOTENCY_KEY = 200;

/** 1 to `max` characters, none of them a control character (C0 or DEL). */
function isControlFreeText(value: unknown, max: number): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return false;
  }
  return true;
}

/**
 * The draft for a publish, or a HeraldError saying what is wrong with it. `publisher` is set for
 * client publishes: its `publish` patterns apply and its `info` travels with the publication.
 * `internal` publishes come from the hub itself and may use the reserved namespace.
 */
export function publishDraft(
  input: PublishInput,
  publisher: Credentials | undefined,
  maxMessageBytes: number,
  ts: number,
  internal = false,
): PublishDraft {
  const { channel, event, ephemeral, idempotencyKey } = input;
  if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
  if (!internal && channel.startsWith(RESERVED_NAMESPACE)) {
    throw new HeraldError('forbidden', `channels starting with "${RESERVED_NAMESPACE}" are reserved for the hub`);
  }
  if (publisher !== undefined && !publisher.canPublish(channel)) {
    throw new HeraldError('forbidden', `not permitted to publish to ${channel}`);
  }
  if (event !== undefined) {
    if (!isControlFreeText(event, MAX_EVENT_NAME)) {
      throw new HeraldError('bad_request', 'event must be a string of 1 to 1000 characters without control characters');
    }
    if (event.startsWith('herald.'))
      throw new HeraldError('reserved_event', 'event names starting with "herald." are reserved');
  }
  if (ephemeral !== undefined && typeof ephemeral !== 'boolean') {
    throw new HeraldError('bad_request', 'ephemeral must be a boolean');
  }
  if (idempotencyKey !== undefined && !isControlFreeText(idempotencyKey, MAX_IDEMPOTENCY_KEY)) {
    throw new HeraldError(
      'bad_request',
      'idempotencyKey must be a string of 1 to 200 characters without control characters',
    );
  }
  if (input.data === undefined) throw new HeraldError('bad_request', 'data is required');
  const streamJson = streamMember(input);
  let dataJson: string;
  try {
    dataJson = JSON.stringify(input.data);
  } catch {
    // JSON.parse takes nesting that JSON.stringify overflows the stack on: a client error, not a 500.
    throw new HeraldError('bad_request', 'data is nested too deeply');
  }
  // JSON text is mostly ASCII: the length is a cheap lower bound before counting bytes exactly.
  if (dataJson.length > maxMessageBytes || Buffer.byteLength(dataJson) > maxMessageBytes) {
    throw new HeraldError('too_large', `data is larger than ${maxMessageBytes} bytes`);
  }
  return {
    channel,
    dataJson,
    ts,
    ephemeral: ephemeral === true,
    ...(event === undefined ? {} : { event }),
    ...(publisher?.infoJson === undefined ? {} : { infoJson: publisher.infoJson }),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    ...(streamJson === undefined ? {} : { streamJson }),
  };
}
