/**
 * Publication packets, built once per publication and written as they are to every Socket.IO
 * subscriber (the fan-out never serialises per subscriber).
 *
 * A Socket.IO EVENT on the default namespace, without an ack id, is `2` followed by the JSON
 * array `[name, ...args]` (socket.io-protocol v5); Engine.IO carries it as a `message` packet,
 * `4` + that text. Over long-polling Engine.IO joins the text of several packets into one
 * response; over WebSocket it writes one text frame per packet. That frame is built here too and
 * handed to engine.io as `wsPreEncodedFrame`, the same door socket.io's own broadcast uses, so a
 * WebSocket subscriber costs one socket write.
 */
import { defineEncoder, textFrame, type PublicationRecord } from '@herald/server';
import { publicationEventName, MESSAGE_EVENT } from './events.js';

/** What engine.io's `Socket.write` takes as options for a packet with a pre-built WebSocket frame. */
export interface PacketOptions {
  compress: boolean;
  wsPreEncodedFrame: Buffer[];
}

export interface EncodedPacket {
  /** The Socket.IO packet text (without Engine.IO's `4`). */
  readonly text: string;
  readonly options: PacketOptions;
  /** Bytes this packet occupies on the wire, counted once for the queue bound. */
  readonly bytes: number;
}

/** The Socket.IO packet text of a publication: `message` with `(pub)`, or its event with `(data, pub)`. */
export function publicationPacketText(record: PublicationRecord): string {
  const name = publicationEventName(record.event);
  if (name === MESSAGE_EVENT) return `2["message",${record.json}]`;
  // The publication's `data` as JSON: parsed from the envelope once per publication, not per subscriber.
  const data = (JSON.parse(record.json) as { data: unknown }).data;
  return `2[${JSON.stringify(name)},${JSON.stringify(data)},${record.json}]`;
}

export function encodePacket(text: string): EncodedPacket {
  const frame = engineTextFrame(text);
  return { text, options: { compress: false, wsPreEncodedFrame: [frame] }, bytes: frame.length };
}

export function encodePublication(record: PublicationRecord): EncodedPacket {
  return encodePacket(publicationPacketText(record));
}

/** The per-publication encoding for Socket.IO subscribers, cached on each Delivery. */
export const socketIoPublication = defineEncoder(encodePublication);

/** A WebSocket text frame holding the Engine.IO message packet `4<text>`, valid on every connection. */
export function engineTextFrame(text: string): Buffer {
  return textFrame(`4${text}`);
}
