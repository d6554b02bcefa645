/**
 * The NATS broker: history in one JetStream stream (a subject per channel), fan-out by the
 * stream's RePublish (every stored message goes to `<ns>.f.<channel>` in store order, so storing
 * and fan-out are one step, done by the server), ephemeral and join/leave messages on the same
 * core subjects, epochs and idempotency records in KV buckets (names.ts has the layout).
 *
 * Offsets: each message carries its channel offset and epoch in headers. A node publishes offset
 * N+1 with `Nats-Expected-Last-Subject-Sequence` set to the stream sequence of offset N, so the
 * stream refuses it if anyone stored anything on the channel in between; the node then rereads
 * the top and tries again. Offsets are therefore contiguous from 1 across all nodes. A node sends
 * one publication per channel at a time (concurrent ones would only refuse each other).
 */
import { publicationJson } from '@herald/protocol';
import {
  IDEMPOTENCY_WINDOW_MS,
  type Broker,
  type BrokerEvents,
  type ControlMessage,
  type HistoryLimits,
  type HistoryQuery,
  type HistoryResult,
  type PublicationRecord,
  type PublishDraft,
  type PublishResult,
} from '@herald/server';
import { headers, type KV, type Msg, type PubAck, type Subscription } from 'nats';
import type { Logger } from 'pino';
import { HistoryReader } from './history-reader.js';
import type { NatsLink } from './link.js';
import { HEADER, token, type NatsNames } from './names.js';
import { ensureHistoryStream, ensureKv, isWrongLastSequence, type StorageSettings } from './setup.js';
import { StreamCache } from './stream-cache.js';

export interface NatsBrokerOptions extends HistoryLimits, StorageSettings {
  /** Milliseconds before a flush or a JetStream request fails. */
  readonly timeoutMs: number;
  /** Seconds an idle channel keeps its offset and epoch after its last publication. */
  readonly streamMetaTtlSeconds: number;
  readonly logger: Logger;
}

/** Publish attempts per publication before giving up under contention for one channel. */
const MAX_ATTEMPTS = 64;

export class NatsBroker implements Broker {
  readonly name = 'nats';
  readonly #link: NatsLink;
  readonly #names: NatsNames;
  readonly #options: NatsBrokerOptions;
  readonly #cache = new StreamCache();
  readonly #reader: HistoryReader;
  readonly #subscriptions = new Map<string, Subscription>();
  /** Per channel, the tail of this node's queue of publications. */
  readonly #queues = new Map<string, Promise<unknown>>();
  #events: BrokerEvents | undefined;
  #control: Subscription | undefined;
  #epochs: KV | undefined;
  #idempotency: KV | undefined;
  #ready = false;
  #unlisten: (() => void) | undefined;

  constructor(link: NatsLink, names: NatsNames, options: NatsBrokerOptions) {
    this.#link = link;
    this.#names = names;
    this.#options = options;
    this.#reader = new HistoryReader(link, names, options, this.#cache, () => this.#kv(this.#epochs));
    link.acquire();
  }

  get ready(): boolean {
    return this.#ready;
  }

  async start(events: BrokerEvents): Promise<void> {
    const { nc } = await this.#link.connect();
    await this.#setup();
    this.#events = events;
    this.#control = nc.subscribe(this.#names.control, { callback: (_e, msg) => this.#onControl(msg) });
    await this.#flush();
    this.#ready = this.#link.connected;
    this.#unlisten = this.#link.onChange((connected) => void this.#linkChanged(connected));
  }

  async close(): Promise<void> {
    this.#unlisten?.();
    this.#events = undefined;
    this.#ready = false;
    for (const sub of this.#subscriptions.values()) sub.unsubscribe();
    this.#subscriptions.clear();
    this.#control?.unsubscribe();
    await this.#link.release();
  }

  async publish(draft: PublishDraft): Promise<PublishResult> {
    this.#requireStarted();
    if (draft.ephemeral) return this.#publishEphemeral(draft);
    return this.#serially(draft.channel, () => this.#store(draft));
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

  // ---- publishing -------------------------------------------------------------------------

  async #store(draft: PublishDraft): Promise<PublishResult> {
    const channel = draft.channel;
    const { js } = this.#link.session;
    const subject = this.#names.history(token(channel));
    const idemKey = this.#idempotencyKey(draft);
    if (idemKey !== undefined) {
      const seen = await this.#seen(channel, idemKey);
      if (seen !== undefined) return { record: seen, duplicate: true };
    }
    for (let attempt = 1; ; attempt++) {
      const last = this.#cache.last(channel) ?? (await this.#reader.top(channel));
      const offset = last.offset + 1;
      const record = stored(draft, offset, last.epoch);
      const h = headers();
      h.set(HEADER.offset, String(offset));
      h.set(HEADER.epoch, last.epoch);
      if (draft.event !== undefined) h.set(HEADER.event, draft.event);
      let ack: PubAck;
      try {
        ack = await js.publish(subject, record.json, {
          headers: h,
          expect: { lastSubjectSequence: last.seq },
          // JetStream's own deduplication makes the key atomic across nodes (a 5-minute window).
          ...(idemKey === undefined ? {} : { msgID: idemKey }),
        });
      } catch (error) {
        if (!isWrongLastSequence(error) || attempt >= MAX_ATTEMPTS) throw error;
        // Someone else stored on this channel first: reread the top and go again.
        this.#cache.forget(channel);
        if (attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * attempt));
        continue;
      }
      if (ack.duplicate) return { record: await this.#original(channel, idemKey, ack.seq), duplicate: true };
      this.#cache.learn(channel, { seq: ack.seq, offset, epoch: last.epoch });
      if (idemKey !== undefined) await this.#remember(idemKey, record);
      return { record, duplicate: false };
    }
  }

  async #publishEphemeral(draft: PublishDraft): Promise<PublishResult> {
    if (!this.#link.connected) throw new Error('nats is not connected');
    const { nc } = this.#link.session;
    const record: PublicationRecord =
      draft.event === undefined
        ? { channel: draft.channel, offset: 0, epoch: '', json: publicationJson(draft) }
        : { channel: draft.channel, offset: 0, epoch: '', event: draft.event, json: publicationJson(draft) };
    const idemKey = this.#idempotencyKey(draft);
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

  #idempotencyKey(draft: PublishDraft): string | undefined {
    return draft.idempotencyKey === undefined ? undefined : `${token(draft.channel)}.${token(draft.idempotencyKey)}`;
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
  async #original(channel: string, idemKey: string | undefined, seq: number): Promise<PublicationRecord> {
    const fromKv = idemKey === undefined ? undefined : await this.#seen(channel, idemKey);
    const record = fromKv ?? (await this.#reader.bySeq(channel, seq));
    if (record === undefined) throw new Error('the first publication with this idempotency key is gone');
    return record;
  }

  #serially<T>(channel: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(channel) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.#queues.set(channel, tail);
    void tail.then(() => {
      if (this.#queues.get(channel) === tail) this.#queues.delete(channel);
    });
    return next;
  }

  // ---- receiving --------------------------------------------------------------------------

  #onFanout(channel: string, msg: Msg): void {
    const events = this.#events;
    if (events === undefined || !this.#subscriptions.has(channel)) return;
    try {
      const h = msg.headers;
      if (h?.has(HEADER.control)) return events.control(JSON.parse(msg.string()) as ControlMessage);
      const event = h?.get(HEADER.event) ?? '';
      const offsetText = h?.get(HEADER.offset) ?? '';
      const json = msg.string();
      if (offsetText === '') {
        return events.publication(
          event === '' ? { channel, offset: 0, epoch: '', json } : { channel, offset: 0, epoch: '', event, json },
        );
      }
      const offset = Number(offsetText);
      const epoch = h?.get(HEADER.epoch) ?? '';
      const seq = Number(h?.get(HEADER.sequence) ?? 0);
      if (seq > 0) this.#cache.learn(channel, { seq, offset, epoch });
      events.publication(event === '' ? { channel, offset, epoch, json } : { channel, offset, epoch, event, json });
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

function stored(draft: PublishDraft, offset: number, epoch: string): PublicationRecord {
  const json = publicationJson({ ...draft, offset, epoch });
  return draft.event === undefined
    ? { channel: draft.channel, offset, epoch, json }
    : { channel: draft.channel, offset, epoch, event: draft.event, json };
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
