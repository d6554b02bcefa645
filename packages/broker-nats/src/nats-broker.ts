/**
 * The NATS broker: history in one JetStream stream (a subject per channel), fan-out by the
 * stream's RePublish (every stored message goes to `<ns>.f.<channel>` in store order, so storing
 * and fan-out are one step, done by the server), ephemeral and join/leave messages on the same
 * core subjects, epochs and idempotency records in KV buckets (names.ts has the layout).
 *
 * Offsets: each message carries its channel offsets and epoch in headers (a message may hold
 * several consecutive publications of its channel, message.ts). A node stores a message with
 * `Nats-Expected-Last-Subject-Sequence` set to the stream sequence of the channel's previous
 * message, so the stream refuses it if anyone stored anything on the channel in between; the node
 * then rereads the top and tries again. Offsets are therefore contiguous from 1 across all nodes.
 * How publications are gathered into messages, one on the way per channel, is nats-publisher.ts.
 */
import { publicationJson } from '@herald/protocol';
import {
  IDEMPOTENCY_WINDOW_MS,
  NodeRequests,
  answerRequest,
  newEpoch,
  type AnswerEnvelope,
  type NodeReplies,
  type NodeRequest,
  type RequestEnvelope,
  publishQueueLimits,
  type Broker,
  type BrokerEvents,
  type ControlMessage,
  type HistoryLimits,
  type HistoryQuery,
  type HistoryResult,
  type PublicationRecord,
  type PublishDraft,
  type PublishQueueLimits,
  type PublishResult,
} from '@herald/server';
import { headers, type KV, type Msg, type Subscription } from 'nats';
import type { Logger } from 'pino';
import { HistoryReader } from './history-reader.js';
import { JsPublishError, JsPublisher } from './js-publish.js';
import type { NatsLink } from './link.js';
import { decodeMessage } from './message.js';
import { HEADER, token, type NatsNames } from './names.js';
import { NatsPublisher } from './nats-publisher.js';
import { NatsMetadata } from './metadata.js';
import { NodeRoster } from './node-roster.js';
import { ensureHistoryStream, ensureKv, type StorageSettings } from './setup.js';
import { StreamCache } from './stream-cache.js';

export interface NatsBrokerOptions extends HistoryLimits, StorageSettings {
  /** Milliseconds before a flush or a JetStream request fails. */
  readonly timeoutMs: number;
  /** Seconds an idle channel keeps its offset and epoch after its last publication. */
  readonly streamMetaTtlSeconds: number;
  readonly logger: Logger;
  /** The bound on publications waiting for NATS (publish-queue.ts in @herald/server); defaults apply. */
  readonly publishQueue?: Partial<PublishQueueLimits>;
}

const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export class NatsBroker implements Broker {
  readonly name = 'nats';
  readonly #link: NatsLink;
  readonly #names: NatsNames;
  readonly #options: NatsBrokerOptions;
  readonly #cache = new StreamCache();
  readonly #reader: HistoryReader;
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #js: JsPublisher;
  readonly #publisher: NatsPublisher;
  #events: BrokerEvents | undefined;
  #control: Subscription | undefined;
  #requestSubs: Subscription[] = [];
  readonly #requests = new NodeRequests();
  readonly #roster: NodeRoster;
  #epochs: KV | undefined;
  #idempotency: KV | undefined;
  #metadataKv: KV | undefined;
  /** The metadata store (`Broker.metadata`): small records kept beside the channels (Durable Streams). */
  readonly metadata: NatsMetadata;
  #ready = false;
  #unlisten: (() => void) | undefined;

  constructor(link: NatsLink, names: NatsNames, options: NatsBrokerOptions) {
    this.#link = link;
    this.#names = names;
    this.#options = options;
    this.#roster = new NodeRoster(this.#requests.nodeId, names.nodes);
    this.#reader = new HistoryReader(link, names, options, this.#cache, () => this.#kv(this.#epochs));
    this.metadata = new NatsMetadata(() => this.#kv(this.#metadataKv));
    this.#js = new JsPublisher(options.timeoutMs);
    this.#publisher = new NatsPublisher({
      js: this.#js,
      cache: this.#cache,
      reader: this.#reader,
      limits: publishQueueLimits(options.publishQueue),
      logger: options.logger,
      subject: (channel) => names.history(token(channel)),
      maxPayload: () => link.session.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD,
      connected: () => link.connected,
      idempotency: {
        messageId: (channel, key) => `${token(channel)}.${token(key)}`,
        original: (channel, messageId, seq) => this.#original(channel, messageId, seq),
        remember: (messageId, record) => void this.#remember(messageId, record),
      },
    });
    link.acquire();
  }

  get ready(): boolean {
    return this.#ready;
  }

  async start(events: BrokerEvents): Promise<void> {
    const { nc } = await this.#link.connect();
    await this.#setup();
    this.#js.start(nc);
    this.#events = events;
    this.#control = nc.subscribe(this.#names.control, { callback: (_e, msg) => this.#onControl(msg) });
    this.#requestSubs = [
      nc.subscribe(this.#names.requests, { callback: (_e, msg) => void this.#answer(msg) }),
      nc.subscribe(this.#names.answers(this.#requests.nodeId), {
        callback: (_e, msg) => {
          try {
            this.#requests.answered(JSON.parse(msg.string()) as AnswerEnvelope);
          } catch (error) {
            this.#options.logger.error({ err: error }, 'unreadable answer from nats');
          }
        },
      }),
    ];
    await this.#flush();
    await this.#roster.start(nc);
    this.#ready = this.#link.connected;
    this.#unlisten = this.#link.onChange((connected) => void this.#linkChanged(connected));
  }

  async close(): Promise<void> {
    this.#unlisten?.();
    this.#events = undefined;
    this.#ready = false;
    this.#js.stop(new JsPublishError('nats broker closed', undefined, true));
    for (const sub of this.#subscriptions.values()) sub.unsubscribe();
    this.#subscriptions.clear();
    this.#control?.unsubscribe();
    this.#requests.close();
    if (this.#link.connected) this.#roster.stop();
    for (const sub of this.#requestSubs) sub.unsubscribe();
    this.#requestSubs = [];
    await this.#flush().catch(() => undefined);
    await this.#link.release();
  }

  async publish(draft: PublishDraft): Promise<PublishResult> {
    this.#requireStarted();
    if (draft.ephemeral) return this.#publishEphemeral(draft);
    return this.#publisher.publish(draft);
  }

  async subscribe(channel: string): Promise<void> {
    this.#requireStarted();
    if (!this.#link.connected) throw new Error('nats is not connected');
    const { nc } = this.#link.session;
    if (!this.#subscriptions.has(channel)) {
      const sub = nc.subscribe(this.#names.fanout(token(channel)), {
        callback: (_e, msg) => this.#onFanout(channel, msg),
      });
      this.#subscriptions.set(channel, sub);
    }
    await this.#flush();
  }

  async unsubscribe(channel: string): Promise<void> {
    const sub = this.#subscriptions.get(channel);
    if (sub === undefined) return;
    this.#subscriptions.delete(channel);
    sub.unsubscribe();
    if (this.#link.connected) await this.#flush();
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    return this.#reader.read(channel, query);
  }

  async broadcast(message: ControlMessage): Promise<void> {
    this.#requireStarted();
    if (!this.#link.connected) throw new Error('nats is not connected');
    const { nc } = this.#link.session;
    const body = JSON.stringify(message);
    if (message.kind === 'disconnect_user') {
      nc.publish(this.#names.control, body);
    } else {
      const h = headers();
      h.set(HEADER.control, '1');
      nc.publish(this.#names.fanout(token(message.channel)), body, { headers: h });
    }
    await this.#flush();
  }

  /** Waits for as many answers as the roster counts live nodes. */
  async request(message: NodeRequest, timeoutMs: number): Promise<NodeReplies> {
    this.#requireStarted();
    if (!this.#link.connected) throw new Error('nats is not connected');
    const { nc } = this.#link.session;
    return this.#requests.ask(message, timeoutMs, async (envelope) => {
      nc.publish(this.#names.requests, JSON.stringify(envelope));
      return this.#roster.count();
    });
  }

  /**
   * A new epoch first, then the purge: a read between the two still sees the old messages with
   * their old epoch; every read after sees no message and the new epoch. Other nodes' caches learn
   * it on their next publish (the expected subject sequence no longer matches) or read.
   */
  async removeHistory(channel: string): Promise<void> {
    this.#requireStarted();
    const { jsm } = this.#link.session;
    await this.#kv(this.#epochs).put(token(channel), newEpoch());
    await jsm.streams.purge(this.#names.stream, { filter: this.#names.history(token(channel)) });
    this.#cache.forget(channel);
  }

  async #answer(msg: Msg): Promise<void> {
    let envelope: RequestEnvelope;
    try {
      envelope = JSON.parse(msg.string()) as RequestEnvelope;
    } catch (error) {
      this.#options.logger.error({ err: error }, 'unreadable node request from nats');
      return;
    }
    const answer = await answerRequest(this.#events, envelope.message);
    if (!this.#link.connected) return;
    const reply: AnswerEnvelope = { id: envelope.id, answer };
    this.#link.session.nc.publish(this.#names.answers(envelope.from), JSON.stringify(reply));
  }

  // ---- publishing -------------------------------------------------------------------------

  async #publishEphemeral(draft: PublishDraft): Promise<PublishResult> {
    if (!this.#link.connected) throw new Error('nats is not connected');
    const { nc } = this.#link.session;
    const record: PublicationRecord =
      draft.event === undefined
        ? { channel: draft.channel, offset: 0, epoch: '', json: publicationJson(draft) }
        : { channel: draft.channel, offset: 0, epoch: '', event: draft.event, json: publicationJson(draft) };
    const idemKey =
      draft.idempotencyKey === undefined ? undefined : `${token(draft.channel)}.${token(draft.idempotencyKey)}`;
    if (idemKey !== undefined) {
      try {
        await this.#kv(this.#idempotency).create(idemKey, encodeRecord(record));
      } catch {
        const seen = await this.#seen(draft.channel, idemKey);
        if (seen !== undefined) return { record: seen, duplicate: true };
        throw new Error('idempotency record could not be written');
      }
    }
    const h = headers();
    if (draft.event !== undefined) h.set(HEADER.event, draft.event);
    nc.publish(this.#names.fanout(token(draft.channel)), record.json, { headers: h });
    return { record, duplicate: false };
  }

  async #seen(channel: string, idemKey: string): Promise<PublicationRecord | undefined> {
    const entry = await this.#kv(this.#idempotency).get(idemKey);
    return entry !== null && entry.operation === 'PUT' ? decodeRecord(channel, entry.string()) : undefined;
  }

  async #remember(idemKey: string, record: PublicationRecord): Promise<void> {
    try {
      await this.#kv(this.#idempotency).put(idemKey, encodeRecord(record));
    } catch (error) {
      // JetStream's deduplication still holds the key; only a trimmed original could not be answered.
      this.#options.logger.warn({ err: error }, 'idempotency record not written');
    }
  }

  /** The first result for a key JetStream saw before: from KV, else the stored message itself. */
  async #original(channel: string, idemKey: string, seq: number): Promise<PublicationRecord> {
    const fromKv = await this.#seen(channel, idemKey);
    const record = fromKv ?? (await this.#reader.bySeq(channel, seq));
    if (record === undefined) throw new Error('the first publication with this idempotency key is gone');
    return record;
  }

  // ---- receiving --------------------------------------------------------------------------

  #onFanout(channel: string, msg: Msg): void {
    const events = this.#events;
    if (events === undefined || !this.#subscriptions.has(channel)) return;
    try {
      const h = msg.headers;
      if (h?.has(HEADER.control)) return events.control(JSON.parse(msg.string()) as ControlMessage);
      if ((h?.get(HEADER.offset) ?? '') === '') {
        const event = h?.get(HEADER.event) ?? '';
        const json = msg.string();
        return events.publication(
          event === '' ? { channel, offset: 0, epoch: '', json } : { channel, offset: 0, epoch: '', event, json },
        );
      }
      const message = decodeMessage(channel, h, msg.string());
      const last = message.first + message.records.length - 1;
      const seq = Number(h?.get(HEADER.sequence) ?? 0);
      if (seq > 0) this.#cache.learn(channel, { seq, offset: last, epoch: message.epoch }, message.first);
      for (const record of message.records) events.publication(record);
    } catch (error) {
      this.#options.logger.error({ err: error, channel }, 'unreadable message from nats');
    }
  }

  #onControl(msg: Msg): void {
    try {
      this.#events?.control(JSON.parse(msg.string()) as ControlMessage);
    } catch (error) {
      this.#options.logger.error({ err: error }, 'unreadable control message from nats');
    }
  }

  // ---- connection -------------------------------------------------------------------------

  async #setup(): Promise<void> {
    const { js, jsm } = this.#link.session;
    const o = this.#options;
    const metaTtlSeconds = Math.max(o.streamMetaTtlSeconds, o.ttlSeconds);
    await ensureHistoryStream(jsm, this.#names, { ...o, metaTtlSeconds }, o.logger);
    this.#epochs = await ensureKv(js, jsm, this.#names.epochs, metaTtlSeconds * 1000, o);
    this.#idempotency = await ensureKv(js, jsm, this.#names.idempotency, IDEMPOTENCY_WINDOW_MS, o);
    // Metadata lives until deleted: no ttl.
    this.#metadataKv = await ensureKv(js, jsm, this.#names.metadata, 0, o);
  }

  /**
   * Disconnected: not ready. Reconnected: nats.js has resent the subscriptions; once the server
   * has them (flush) and the stream and buckets exist (a server that lost its storage lost them),
   * the broker is ready again and the core fills from history what the fan-out dropped.
   */
  async #linkChanged(connected: boolean): Promise<void> {
    const events = this.#events;
    if (events === undefined) return;
    if (!connected) {
      // Answers to what is on the way cannot come on this connection: fail it now, not at the timeout.
      this.#js.failAll(new JsPublishError('nats connection lost', undefined, true));
      if (this.#ready) {
        this.#ready = false;
        events.readiness(false);
      }
      return;
    }
    try {
      await this.#setup();
      await this.#flush();
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'nats setup after reconnect failed; retrying');
      setTimeout(() => void this.#linkChanged(this.#link.connected), 500).unref();
      return;
    }
    if (!this.#link.connected || this.#ready || this.#events === undefined) return;
    this.#cache.clear();
    this.#ready = true;
    events.readiness(true);
  }

  /** The server has everything sent so far; fails instead of waiting through an outage. */
  async #flush(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('nats did not answer a flush')), this.#options.timeoutMs);
    });
    try {
      await Promise.race([this.#link.session.nc.flush(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #kv(kv: KV | undefined): KV {
    if (kv === undefined) throw new Error('nats broker used before start()');
    return kv;
  }

  #requireStarted(): BrokerEvents {
    if (this.#events === undefined) throw new Error('nats broker used before start() or after close()');
    return this.#events;
  }
}

/** An idempotency record in KV: `offset \n epoch \n event \n json`. */
function encodeRecord(record: PublicationRecord): string {
  return `${record.offset}\n${record.epoch}\n${record.event ?? ''}\n${record.json}`;
}

function decodeRecord(channel: string, text: string): PublicationRecord {
  const a = text.indexOf('\n');
  const b = text.indexOf('\n', a + 1);
  const c = text.indexOf('\n', b + 1);
  if (a < 0 || b < 0 || c < 0) throw new Error('malformed idempotency record');
  const offset = Number(text.slice(0, a));
  const epoch = text.slice(a + 1, b);
  const event = text.slice(b + 1, c);
  const json = text.slice(c + 1);
  return event === '' ? { channel, offset, epoch, json } : { channel, offset, epoch, event, json };
}
