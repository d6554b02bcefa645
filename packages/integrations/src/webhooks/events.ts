/** The webhook events Herald sends, and how each is serialized (once, when it is created). */
import { randomUUID } from 'node:crypto';

export const WEBHOOK_EVENT_TYPES = [
  'user.online',
  'user.offline',
  'channel.occupied',
  'channel.vacated',
  'publication',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** One event on its way: the body is final (retries send the same bytes, re-signed). */
export interface OutgoingEvent {
  readonly id: string;
  /** A WebhookEventType, or another sender's own (the Pusher protocol's batches are `pusher`). */
  readonly type: WebhookEventType | 'pusher';
  /** When the event was created, epoch ms (also the body's `ts`). */
  readonly createdAt: number;
  readonly body: string;
  /** Attempts made so far. */
  attempts: number;
}

/**
 * Builds an event. `dataJson` is the JSON text of the event's `data` (so a publication's stored
 * JSON is embedded without being parsed again).
 */
export function createEvent(type: WebhookEventType, dataJson: string, now = Date.now()): OutgoingEvent {
  const id = randomUUID();
  return {
    id,
    type,
    createdAt: now,
    body: `{"id":${JSON.stringify(id)},"type":"${type}","ts":${now},"data":${dataJson}}`,
    attempts: 0,
  };
}
