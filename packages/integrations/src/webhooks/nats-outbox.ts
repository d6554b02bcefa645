/**
 * The webhook outbox on NATS JetStream: events survive the node that created them.
 *
 * A work-queue stream `herald_webhooks_<namespace>` (file storage: it survives a NATS restart)
 * holds each event until it is acknowledged, and one durable pull consumer, shared by every node,
 * hands each event to one node at a time. Nodes pull only as many events as they have free request
 * slots. A failed attempt is `nak`ed with the backoff delay: JetStream redelivers it then, to any
 * node. An event whose node died is redelivered once `AckWait` (= `claimIdleMs`, above the
 * request timeout) passes without an answer. The delivery count is the attempt count (an attempt a
 * crash interrupted included), so nothing about attempts is stored in the message.
 *
 * `max_deliver` is unlimited on purpose: with a server-side limit, an event whose last attempt was
 * interrupted by a crash would stay in the stream, never redelivered and never dead-lettered. The
 * dispatcher dead-letters an event delivered more than `maxAttempts` times instead.
 *
 * The bound is exact: `max_msgs = capacity` with `discard: new`, so a full stream refuses the
 * append; the appending node then deletes the oldest ready message (else the oldest of all, which
 * may be in flight) and returns it to be dead-lettered as `queue_full`, and appends again.
 * (`discard: old` would make room silently.)
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  connect,
  headers,
  nanos,
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type StoredMsg,
  type StreamConfig,
} from 'nats';
import type { OutgoingEvent, WebhookEventType } from './events.js';
import type { Claim, Outbox } from './outbox.js';

export interface NatsOutboxOptions {
  /** `nats://host:port` (several may be given comma-separated). */
  readonly url: string;
  /** Stream `herald_webhooks_<namespace>`, subject `herald_webhooks.<namespace>.events`. */
  readonly namespace: string;
  readonly capacity: number;
  /** AckWait: an event held this long without an answer goes to another node (must exceed the request timeout). */
  readonly claimIdleMs: number;
  /** Default file: the outbox survives a restart of the NATS server. */
  readonly storage?: 'file' | 'memory';
}

const CONSUMER = 'herald-webhooks';
const MAX_MESSAGES_EXCEEDED = 10077;
const NO_MESSAGE_FOUND = 10037;
const STREAM_NAME_IN_USE = 10058;
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;
const TYPE_HEADER = 'Herald-Event-Type';
const CREATED_HEADER = 'Herald-Created-At';

export class NatsOutbox implements Outbox {
  readonly name = 'nats';
  readonly durable = true;
  readonly stream: string;
  readonly #subject: string;
  readonly #o: NatsOutboxOptions;
  #nc: NatsConnection | undefined;
  #consumer: Consumer | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;

  constructor(options: NatsOutboxOptions) {
    this.#o = options;
    this.stream = `herald_webhooks_${options.namespace}`;
    this.#subject = `herald_webhooks.${options.namespace}.events`;
  }

  get #api(): { js: JetStreamClient; jsm: JetStreamManager } {
    if (this.#js === undefined || this.#jsm === undefined) throw new Error('the NATS webhook outbox is not started');
    return { js: this.#js, jsm: this.#jsm };
  }

  async start(): Promise<void> {
    this.#nc = await connect({ servers: this.#o.url.split(','), name: 'herald-webhooks' });
    this.#js = this.#nc.jetstream();
    this.#jsm = await this.#nc.jetstreamManager();
    await this.#ensure();
  }

  /** Creates the stream and the consumer, or adopts them with this node's settings. */
  async #ensure(): Promise<void> {
    const { jsm } = this.#api;
    const stream: Partial<StreamConfig> & { name: string } = {
      name: this.stream,
      subjects: [this.#subject],
      retention: RetentionPolicy.Workqueue,
      storage: this.#o.storage === 'memory' ? StorageType.Memory : StorageType.File,
      max_msgs: this.#o.capacity,
      discard: DiscardPolicy.New,
    };
    try {
      await jsm.streams.add(stream);
    } catch (error) {
      if (apiErrorCode(error) !== STREAM_NAME_IN_USE) throw error;
      // Nodes of one deployment share the settings: the latest start's capacity wins.
      await jsm.streams.update(this.stream, { max_msgs: stream.max_msgs, discard: stream.discard });
    }
    const consumer = {
      ack_wait: nanos(this.#o.claimIdleMs),
      max_deliver: -1,
      // Events waiting for a redelivery count as pending acks: allow as many as the stream holds.
      max_ack_pending: this.#o.capacity,
    };
    const exists = await jsm.consumers.info(this.stream, CONSUMER).then(
      () => true,
      () => false,
    );
    if (exists) await jsm.consumers.update(this.stream, CONSUMER, consumer);
    else {
      await jsm.consumers.add(this.stream, {
        ...consumer,
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
      });
    }
  }

  async append(event: OutgoingEvent): Promise<OutgoingEvent[]> {
    const { js } = this.#api;
    const h = headers();
    // Also the stream's dedupe key: an append retried after a lost answer is stored once.
    h.set('Nats-Msg-Id', event.id);
    h.set(TYPE_HEADER, event.type);
    h.set(CREATED_HEADER, String(event.createdAt));
    const dropped: OutgoingEvent[] = [];
    for (let attempt = 1; ; attempt++) {
      try {
        await js.publish(this.#subject, new TextEncoder().encode(event.body), { headers: h });
        return dropped;
      } catch (error) {
        if (attempt >= 10) throw error;
        if (apiErrorCode(error) === MAX_MESSAGES_EXCEEDED) {
          // Full: make room (bounded: other nodes may be appending too), then append again.
          const oldest = await this.#removeOldest();
          if (oldest !== undefined) dropped.push(oldest);
        } else if (isNoResponders(error) && attempt === 1) {
          // No stream takes the subject: a NATS server that lost its storage. Create it again.
          await this.#ensure();
        } else throw error;
      }
    }
  }

  /** Deletes the oldest message no node has received yet, else the oldest of all. */
  async #removeOldest(): Promise<OutgoingEvent | undefined> {
    const { jsm } = this.#api;
    const info = await jsm.consumers.info(this.stream, CONSUMER);
    let message: StoredMsg | undefined;
    for (const seq of [info.delivered.stream_seq + 1, 0]) {
      message = await jsm.streams
        .getMessage(this.stream, { next_by_subj: this.#subject, seq } as never)
        .catch((error: unknown) => {
          if (apiErrorCode(error) === NO_MESSAGE_FOUND) return undefined;
          throw error;
        });
      if (message !== undefined) break;
    }
    if (message === undefined) return undefined;
    // Another node may have removed it first: then only that node dead-letters it.
    const removed = await jsm.streams.deleteMessage(this.stream, message.seq, false).catch(() => false);
    return removed ? decode(message.header, message.data, 0) : undefined;
  }

  async *claim(max: number, waitMs: number, signal: AbortSignal): AsyncIterable<Claim> {
    const { js } = this.#api;
    if (signal.aborted) return;
    try {
      this.#consumer ??= await js.consumers.get(this.stream, CONSUMER);
      // JetStream's shortest pull expiry is 1 s; messages are yielded as they arrive.
      const messages = await this.#consumer.fetch({ max_messages: max, expires: Math.max(1000, Math.round(waitMs)) });
      for await (const m of messages) yield this.#claimOf(m);
    } catch (error) {
      this.#consumer = undefined;
      // The stream or consumer is gone (a NATS server that lost its storage): create them again.
      if ([STREAM_NOT_FOUND, CONSUMER_NOT_FOUND].includes(apiErrorCode(error) ?? 0)) await this.#ensure();
      throw error;
    }
  }

  #claimOf(m: JsMsg): Claim {
    const event = decode(m.headers, m.data, m.info.deliveryCount - 1);
    return {
      event,
      ack: async () => {
        await m.ackAck();
      },
      retry: async (delayMs) => {
        m.nak(Math.round(delayMs));
      },
    };
  }

  expedite(): void {}

  /** Messages in the stream, those being sent included. */
  async size(): Promise<number> {
    return (await this.#api.jsm.streams.info(this.stream)).state.messages;
  }

  async close(): Promise<OutgoingEvent[]> {
    const nc = this.#nc;
    if (nc !== undefined && !nc.isClosed()) {
      await nc.drain().catch(() => undefined);
      await nc.close().catch(() => undefined);
    }
    return [];
  }
}

function decode(h: JsMsg['headers'], data: Uint8Array, attempts: number): OutgoingEvent {
  return {
    id: h?.get('Nats-Msg-Id') ?? '',
    type: (h?.get(TYPE_HEADER) ?? 'publication') as WebhookEventType,
    createdAt: Number(h?.get(CREATED_HEADER) ?? 0),
    body: new TextDecoder().decode(data),
    attempts,
  };
}

function isNoResponders(error: unknown): boolean {
  return (error as { code?: string }).code === '503' && apiErrorCode(error) === undefined;
}

function apiErrorCode(error: unknown): number | undefined {
  return (error as { api_error?: { err_code?: number } }).api_error?.err_code;
}
