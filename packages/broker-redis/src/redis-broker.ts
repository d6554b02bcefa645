/**
 * The Redis broker: history in one Redis stream per channel, offsets and epochs in a small hash,
 * fan-out over pub/sub, all written by one Lua script per batch of publications (scripts.ts,
 * publish-batch.ts). Every node sharing the Redis sees the same channels, history, positions and
 * idempotency keys.
 *
 * After a disconnect the pub/sub connection resubscribes every channel before the broker says it
 * is ready again; the core then fills from history what pub/sub dropped meanwhile. The commands
 * connection finds out which Redis it reached (server-probe.ts) before anything is read or
 * written: a Redis that restarted with everything it acknowledged (AOF fsynced on every write)
 * keeps its channels' epochs; one that came back empty, or from an older snapshot, gives them new
 * epochs, and resuming clients are told `recovered: false`.
 */
import {
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
import type { Logger } from 'pino';
import type { RedisKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { RedisMetadata } from './metadata.js';
import { RedisPublisher } from './publish-batch.js';
import { decodeRecord } from './record-text.js';
import { HISTORY, PUBLISH_BATCH, Script } from './scripts.js';
import { probeServer, runMark, type RedisServerIdentity } from './server-probe.js';

export interface RedisBrokerOptions extends HistoryLimits {
  /** Seconds an idle channel keeps its offset and epoch after its last publication (at least the ttl). */
  readonly streamMetaTtlSeconds: number;
  readonly logger: Logger;
  /** The bound on publications waiting for Redis (publish-queue.ts in @herald/server); defaults apply. */
  readonly publishQueue?: Partial<PublishQueueLimits>;
}

const RESUBSCRIBE_RETRY_MS = 500;
const PROBE_RETRY_MS = 500;
const publishScript = new Script(PUBLISH_BATCH);
const historyScript = new Script(HISTORY);

export class RedisBroker implements Broker {
  readonly name = 'redis';
  readonly #link: RedisLink;
  readonly #keys: RedisKeys;
  readonly #options: RedisBrokerOptions;
  /** Channels this node wants delivered; resubscribed after every reconnect. */
  readonly #channels = new Set<string>();
  #events: BrokerEvents | undefined;
  #ready = false;
  /** The pub/sub connection subscribed everything since it last (re)connected. */
  #pubsubCurrent = false;
  #resubscribing: Promise<void> | undefined;
  /** The Redis the current commands connection reached; unknown until probed after each (re)connect. */
  #server: RedisServerIdentity | undefined;
  #probing: Promise<void> | undefined;
  #unlisten: (() => void) | undefined;
  readonly #publisher: RedisPublisher;
  readonly #requests = new NodeRequests();
  /** The metadata store (`Broker.metadata`): small records kept beside the channels (Durable Streams). */
  readonly metadata: RedisMetadata;

  constructor(link: RedisLink, keys: RedisKeys, options: RedisBrokerOptions) {
    this.#link = link;
    this.#keys = keys;
    this.#options = options;
    this.#publisher = new RedisPublisher(
      keys,
      { size: options.size, ttlMs: options.ttlSeconds * 1000, metaTtlMs: this.#metaTtlMs() },
      publishQueueLimits(options.publishQueue),
      {
        runMark: () => this.#requireRunMark(),
        run: (k, args) => publishScript.run(link.commands, k, args),
      },
    );
    this.metadata = new RedisMetadata(link, keys);
    link.acquire();
  }

  get ready(): boolean {
    return this.#ready;
  }

  async start(events: BrokerEvents): Promise<void> {
    await this.#link.connect();
    this.#server = await probeServer(this.#link.commands);
    this.#logServer('started');
    this.#events = events;
    this.#link.pubsub.on('message', (name: string, text: string) => this.#onMessage(name, text));
    await this.#link.pubsub.subscribe(...this.#nodeChannels());
    this.#pubsubCurrent = true;
    this.#ready = this.#link.commandsReady && this.#link.pubsubReady;
    this.#unlisten = this.#link.onChange(() => this.#linkChanged());
  }

  async close(): Promise<void> {
    this.#unlisten?.();
    this.#events = undefined;
    this.#ready = false;
    this.#requests.close();
    if (this.#link.pubsubReady) await this.#link.pubsub.unsubscribe(...this.#nodeChannels()).catch(() => undefined);
    await this.#link.release();
  }

  /** Gathered with the other publishes of this event-loop turn into one script run (publish-batch.ts). */
  async publish(draft: PublishDraft): Promise<PublishResult> {
    this.#requireStarted();
    return this.#publisher.publish(draft);
  }

  async subscribe(channel: string): Promise<void> {
    this.#requireStarted();
    if (!this.#link.pubsubReady) throw new Error('redis pub/sub is not connected');
    this.#channels.add(channel);
    await this.#link.pubsub.subscribe(this.#keys.pubsub(channel));
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#channels.delete(channel);
    if (this.#link.pubsubReady) await this.#link.pubsub.unsubscribe(this.#keys.pubsub(channel));
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const since = query.since;
    const run = this.#requireRunMark();
    const reply = (await historyScript.run(
      this.#link.commands,
      [this.#keys.meta(channel), this.#keys.stream(channel)],
      [
        newEpoch(),
        this.#metaTtlMs(),
        this.#options.size,
        this.#options.ttlSeconds * 1000,
        since === undefined ? 'l' : 's',
        since?.offset ?? 0,
        since?.epoch ?? '',
        query.limit ?? -1,
        run,
        query.maxBytes ?? -1,
      ],
    )) as (string | number)[];
    const epoch = String(reply[0]);
    const publications: PublicationRecord[] = [];
    for (let i = 3; i + 2 < reply.length; i += 3) {
      const event = String(reply[i + 2]);
      const offset = Number(reply[i]);
      const json = String(reply[i + 1]);
      publications.push(event === '' ? { channel, offset, epoch, json } : { channel, offset, epoch, event, json });
    }
    const top = { offset: Number(reply[1]), epoch };
    const recovered = Number(reply[2]);
    return recovered < 0 ? { publications, top } : { publications, top, recovered: recovered === 1 };
  }

  async broadcast(message: ControlMessage): Promise<void> {
    this.#requireStarted();
    const text = JSON.stringify(message);
    if (message.kind === 'disconnect_user') await this.#link.commands.publish(this.#keys.control, text);
    else await this.#link.commands.publish(this.#keys.pubsub(message.channel), `c${text}`);
  }

  /** PUBLISH answers how many nodes' pub/sub connections took the request: that many answers are awaited. */
  async request(message: NodeRequest, timeoutMs: number): Promise<NodeReplies> {
    this.#requireStarted();
    return this.#requests.ask(message, timeoutMs, async (envelope) =>
      Number(await this.#link.commands.publish(this.#keys.requests, JSON.stringify(envelope))),
    );
  }

  /** A new epoch from the next read or publish on: the history script finds no meta and starts one. */
  async removeHistory(channel: string): Promise<void> {
    this.#requireStarted();
    await this.#link.commands.del(this.#keys.meta(channel), this.#keys.stream(channel));
  }

  /** The pub/sub channels every node holds beside its channels': control, requests, its answers. */
  #nodeChannels(): string[] {
    return [this.#keys.control, this.#keys.requests, this.#keys.answers(this.#requests.nodeId)];
  }

  async #answer(envelope: RequestEnvelope): Promise<void> {
    const answer = await answerRequest(this.#events, envelope.message);
    const reply: AnswerEnvelope = { id: envelope.id, answer };
    try {
      await this.#link.commands.publish(this.#keys.answers(envelope.from), JSON.stringify(reply));
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'answer to a node request not sent');
    }
  }

  #metaTtlMs(): number {
    return Math.max(this.#options.streamMetaTtlSeconds, this.#options.ttlSeconds) * 1000;
  }

  #requireStarted(): BrokerEvents {
    if (this.#events === undefined) throw new Error('redis broker used before start() or after close()');
    return this.#events;
  }

  /** Reads and writes wait for the probe of the current connection: its run mark decides epochs. */
  #requireRunMark(): string {
    if (this.#server === undefined) throw new Error('redis commands connection is not checked yet');
    return runMark(this.#server);
  }

  #logServer(event: string): void {
    const server = this.#server;
    if (server === undefined) return;
    const details = { runId: server.runId, fsyncsEveryWrite: server.fsyncsEveryWrite };
    if (server.fsyncsEveryWrite === true)
      this.#options.logger.info(details, `redis ${event}: keeps every acknowledged publication`);
    else
      this.#options.logger.warn(
        details,
        `redis ${event}: it does not fsync every write (appendonly yes, appendfsync always), so a Redis restart ` +
          'may lose acknowledged publications; their channels then start new epochs (docs/scale-out.md, Durability)',
      );
  }

  #onMessage(name: string, text: string): void {
    const events = this.#events;
    if (events === undefined) return;
    try {
      if (name === this.#keys.control) return events.control(JSON.parse(text) as ControlMessage);
      if (name === this.#keys.requests) return void this.#answer(JSON.parse(text) as RequestEnvelope);
      if (name === this.#keys.answers(this.#requests.nodeId))
        return this.#requests.answered(JSON.parse(text) as AnswerEnvelope);
      const channel = this.#keys.channelOf(name);
      if (channel === undefined || !this.#channels.has(channel)) return;
      if (text.startsWith('p')) events.publication(decodeRecord(channel, text.slice(1)));
      else if (text.startsWith('c')) events.control(JSON.parse(text.slice(1)) as ControlMessage);
    } catch (error) {
      this.#options.logger.error({ err: error, name }, 'unreadable message from redis pub/sub');
    }
  }

  /**
   * Ready means: commands work on a connection whose Redis is known, and every wanted channel is
   * subscribed on the current pub/sub connection.
   */
  #linkChanged(): void {
    if (this.#events === undefined) return;
    if (!this.#link.pubsubReady) this.#pubsubCurrent = false;
    else if (!this.#pubsubCurrent && this.#resubscribing === undefined) {
      this.#resubscribing = this.#resubscribe();
    }
    // A closed connection may come back to another Redis (a restart): nothing runs until probed.
    if (!this.#link.commandsReady) this.#server = undefined;
    else if (this.#server === undefined && this.#probing === undefined) this.#probing = this.#probe();
    const ready =
      this.#link.commandsReady && this.#server !== undefined && this.#link.pubsubReady && this.#pubsubCurrent;
    if (ready === this.#ready) return;
    this.#ready = ready;
    this.#options.logger.info({ ready }, ready ? 'redis broker ready' : 'redis broker lost its connection');
    this.#events.readiness(ready);
  }

  async #probe(): Promise<void> {
    try {
      const server = await probeServer(this.#link.commands);
      // A reply from a connection that closed meanwhile describes a Redis we may no longer reach.
      if (this.#link.commandsReady) {
        this.#server = server;
        this.#logServer('reconnected');
      }
      this.#probing = undefined;
      this.#linkChanged();
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'redis server probe failed; retrying');
      setTimeout(() => {
        this.#probing = undefined;
        this.#linkChanged();
      }, PROBE_RETRY_MS).unref();
    }
  }

  async #resubscribe(): Promise<void> {
    try {
      const channels = [...this.#channels];
      await this.#link.pubsub.subscribe(...this.#nodeChannels(), ...channels.map((c) => this.#keys.pubsub(c)));
      // Channels given up while this ran stay unwanted.
      const stale = channels.filter((c) => !this.#channels.has(c)).map((c) => this.#keys.pubsub(c));
      if (stale.length > 0) await this.#link.pubsub.unsubscribe(...stale);
      this.#pubsubCurrent = true;
      this.#resubscribing = undefined;
      this.#linkChanged();
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'redis resubscribe failed; retrying');
      setTimeout(() => {
        this.#resubscribing = undefined;
        this.#linkChanged();
      }, RESUBSCRIBE_RETRY_MS).unref();
    }
  }
}
