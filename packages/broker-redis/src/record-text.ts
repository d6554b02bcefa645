/**
 * A publication record as one string: `offset \n epoch \n event \n json`. The publish script
 * builds it, stores it for idempotency and sends it over pub/sub, so every node decodes the
 * same text. Offsets, epochs and event names never contain a newline (the hub checks events are
 * printable ASCII), so the first three newlines are the separators and the JSON is the rest.
 */
import type { PublicationRecord } from '@herald/server';

export function decodeRecord(channel: string, text: string): PublicationRecord {
  const a = text.indexOf('\n');
  const b = a < 0 ? -1 : text.indexOf('\n', a + 1);
  const c = b < 0 ? -1 : text.indexOf('\n', b + 1);
  if (c < 0) throw new Error('malformed publication record from redis');
  const offset = Number(text.slice(0, a));
  const epoch = text.slice(a + 1, b);
  const event = text.slice(b + 1, c);
  const json = text.slice(c + 1);
  return event === '' ? { channel, offset, epoch, json } : { channel, offset, epoch, event, json };
}
