/**
 * The transport-free core: sessions, channels, the publish pipeline and subscribe-with-recovery.
 * Transports call in with decoded requests and get answers back; the broker calls in with
 * publications. Nothing here knows about sockets, HTTP or JSON framing.
 */
import { randomUUID } from 'node:crypto';
import {
  CloseCode,
  HeraldError,
  UnsubscribeCode,
  isValidChannel,
  type ClientInfo,
  type DisconnectInfo,
  type Position,
} from '@herald/protocol';
import type { Logger } from 'pino';
import type {
  Broker,
  ChannelCount,
  ControlMessage,
  HistoryResult,
  PresenceStore,
  PublicationRecord,
} from '../broker/broker.js';
import { ChannelState } from './channel-state.js';
import { ConcurrencyLimit } from './concurrency-limit.js';
import type { Credentials } from './credentials.js';
import { Delivery } from './delivery.js';
import type { HubHooks, PublishExtensionParser, PublishExtensions } from './hooks.js';
import { mergeRecovery } from './recovery.js';
import { Session, Subscription, type QueueLimits, type SessionTransport } from './session.js';
import { HubStats } from './stats.js';

export interface HubLimits extends QueueLimits {
  /** Largest publication `data`, as JSON text, in bytes. */
  readonly maxMessageBytes: number;
  readonly historySize: number;
  readonly maxSubscriptionsPerSession: number;
  /** Sessions one user (token `sub`) may hold on this node; 0 or absent = no cap. Anonymous clients are not counted. */
  readonly maxSessionsPerUser?: number;
}

export interface HubConfig {
  readonly broker: Broker;
  readonly presence: PresenceStore;
  readonly limits: HubLimits;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** Publish parameters as they arrive from the wire; every field is checked here. */
export interface PublishInput {
  readonly channel?: unknown;
  readonly data?: unknown;
  readonly event?: unknown;
  readonly ephemeral?: unknown;
  readonly idempotencyKey?: unknown;
  // Extension fields (see `addPublishExtension`) ride along; fields nobody registered are ignored.
}

export type PublishAnswer = Position | Record<string, never>;

export interface SubscribeOptions {
  readonly since?: Position;
  readonly joinLeave?: boolean;
  /** Long-poll waiters are not clients anyone can see: they stay out of presence. */
  readonly present?: boolean;
}

export interface SubscribeOutcome {
  readonly subscription: Subscription;
  readonly position: Position;
  readonly recovered?: boolean;
  readonly publications: readonly PublicationRecord[];
}

export interface HistoryInput {
  readonly limit?: number;
  readonly since?: Position;
}

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
 * History reads in flight for hole fills and post-reconnect resyncs. Enough to refill a few
 * thousand channels within seconds on a local broker, few enough not to flood one that just
 * came back.
 */
const HISTORY_FILLS_IN_FLIGHT = 32;

export class Hub {
  readonly stats = new HubStats();
  readonly limits: HubLimits;
  readonly broker: Broker;
  readonly presenceStore: PresenceStore;
  readonly logger: Logger;
  readonly sessions = new Set<Session>();
  /** Paces hole fills and resyncs (ChannelStateOwner). */
  readonly historyReads = new ConcurrencyLimit(HISTORY_FILLS_IN_FLIGHT);
  readonly #channels = new Map<string, ChannelState>();
  readonly #usersSessions = new Map<string, Set<Session>>();
  readonly #now: () => number;
  readonly #hooks: HubHooks[] = [];
  readonly #extensions = new Map<string, PublishExtensionParser>();
  #accepting = false;

  constructor(config: HubConfig) {
    this.broker = config.broker;
    this.presenceStore = config.presence;
    this.limits = config.limits;
    this.logger = config.logger;
    this.#now = config.now ?? Date.now;
  }

  /** Whether new connections are welcome: started, broker connected, not draining. */
  get ready(): boolean {
    return this.#accepting && this.broker.ready;
  }

  async start(): Promise<void> {
    await this.broker.start({
      publication: (record) => this.#channels.get(record.channel)?.dispatch(record),
      control: (message) => this.#onControl(message),
      readiness: (ready) => {
        this.logger.warn({ broker: this.broker.name, ready }, 'broker readiness changed');
        // Back after a disconnect: history fills what pub/sub dropped meanwhile, or positions are lost.
        if (ready) for (const state of this.#channels.values()) state.resync();
      },
    });
    this.#accepting = true;
  }

  /** Stops accepting new connections (readiness turns false); existing sessions go on. */
  stopAccepting(): void {
    this.#accepting = false;
  }

  async close(): Promise<void> {
    this.#accepting = false;
    for (const session of [...this.sessions]) {
      this.endSession(session, { code: CloseCode.GoingAway, reason: 'hub shutting down', reconnect: true });
    }
    await this.broker.close();
    await this.presenceStore.close();
  }

  /** Adds lifecycle hooks; returns a function that removes them. */
  addHooks(hooks: HubHooks): () => void {
    this.#hooks.push(hooks);
    return () => {
      const i = this.#hooks.indexOf(hooks);
      if (i !== -1) this.#hooks.splice(i, 1);
    };
  }

  /**
   * Accepts the publish field `name` as an extension (docs/protocol-extensions.md): when a publish
   * carries it, `parse` checks it before anything is stored (throwing a HeraldError refuses the
   * publish) and its result reaches the `published` hook only, never the delivered publication.
   */
  addPublishExtension(name: string, parse: PublishExtensionParser): () => void {
    if (['channel', 'data', 'event', 'ephemeral', 'idempotencyKey'].includes(name) || this.#extensions.has(name)) {
      throw new Error(`publish field "${name}" is already taken`);
    }
    this.#extensions.set(name, parse);
    return () => void this.#extensions.delete(name);
  }

  #emit<K extends keyof HubHooks>(name: K, ...args: Parameters<NonNullable<HubHooks[K]>>): void {
    for (const hooks of this.#hooks) {
      const hook = hooks[name] as ((...a: typeof args) => void) | undefined;
      if (hook === undefined) continue;
      try {
        hook.apply(hooks, args);
      } catch (error) {
        this.logger.error({ err: error, hook: name }, 'hub hook threw');
      }
    }
  }

  // ---- sessions -------------------------------------------------------------------------

  /** Throws `rate_limited` when the user already holds as many sessions as `maxSessionsPerUser`. */
  openSession(transport: SessionTransport, credentials: Credentials): Session {
    this.admitUser(credentials.userId);
    const session = new Session(randomUUID(), transport, credentials, this);
    this.sessions.add(session);
    this.stats.connections[transport.kind]++;
    this.#indexUser(session);
    this.#emit('sessionOpened', session);
    return session;
  }

  /**
   * The per-user connection cap, checked by `openSession` and early by transports that want to
   * refuse before starting a stream. Per node: users spread over several nodes may hold a cap on each.
   */
  admitUser(userId: string): void {
    const max = this.limits.maxSessionsPerUser ?? 0;
    if (max > 0 && userId !== '' && this.userSessionCount(userId) >= max) {
      throw new HeraldError('rate_limited', `at most ${max} connections per user`);
    }
  }

  /** Ends a session: removes its subscriptions (with presence and leave), then tells the transport. */
  endSession(session: Session, info: DisconnectInfo): void {
    if (session.closed) return;
    session.closed = true;
    this.sessions.delete(session);
    this.stats.connections[session.transport.kind]--;
    this.#unindexUser(session);
    for (const sub of session.subscriptions.values()) this.#detach(sub);
    session.subscriptions.clear();
    session.transport.end(info);
    this.#emit('sessionClosed', session, info);
  }

  /** Replaces a session's credentials after `refresh`; subscriptions no longer permitted end. */
  refresh(session: Session, credentials: Credentials): void {
    if (credentials.userId !== session.userId) {
      throw new HeraldError('forbidden', 'a refreshed token must be for the same user');
    }
    session.credentials = credentials;
    for (const sub of [...session.subscriptions.values()]) {
      if (!credentials.canSubscribe(sub.channel)) {
        this.#removeSubscription(sub);
        session.transport.writeUnsubscribed(sub.channel, UnsubscribeCode.Forbidden, 'no longer permitted');
      }
    }
  }

  /** Sessions whose token expired; the transports' sweeps end them with 4003. */
  *expiredSessions(now = this.#now()): Iterable<Session> {
    for (const session of this.sessions) {
      const expiresAt = session.credentials.expiresAt;
      if (expiresAt !== undefined && expiresAt <= now) yield session;
    }
  }

  // ---- subscribe ------------------------------------------------------------------------

  /**
   * Registers the subscriber first (holding live publications), then reads history, then merges:
   * so nothing published during the read is lost or doubled. The caller sends the answer and
   * then calls `activate`, which releases what was held; live publications follow the answer.
   *
   * The outcome comes at once when nothing has to wait: a channel this node already receives,
   * with the broker's history and the presence store in this process (the embedded ones), which
   * saves a promise per step of every connection's setup. Otherwise, and on any failure, it is a
   * promise: refusals are always rejections.
   */
  subscribe(
    session: Session,
    channel: unknown,
    options: SubscribeOptions = {},
  ): SubscribeOutcome | Promise<SubscribeOutcome> {
    try {
      const sub = this.#addSubscription(session, channel, options);
      const state = this.#attach(sub);
      const history = state.receiving ? this.#readNow(sub, options.since) : undefined;
      if (history === undefined) return this.#subscribeLater(sub, state, options.since);
      return this.#subscribed(sub, options.since, history);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #addSubscription(session: Session, channel: unknown, options: SubscribeOptions): Subscription {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
    if (!session.credentials.canSubscribe(channel)) {
      throw new HeraldError('forbidden', `not permitted to subscribe to ${channel}`);
    }
    if (session.subscriptions.has(channel))
      throw new HeraldError('already_subscribed', `already subscribed to ${channel}`);
    if (session.subscriptions.size >= this.limits.maxSubscriptionsPerSession) {
      throw new HeraldError(
        'bad_request',
        `at most ${this.limits.maxSubscriptionsPerSession} subscriptions per connection`,
      );
    }
    const sub = new Subscription(channel, session, options.joinLeave === true, options.present ?? true);
    session.subscriptions.set(channel, sub);
    return sub;
  }

  /** History and the presence entry without waiting, when broker and store offer it; else undefined. */
  #readNow(sub: Subscription, since: Position | undefined): HistoryResult | undefined {
    const { broker, presenceStore } = this;
    if (broker.historyNow === undefined || (sub.present && presenceStore.addNow === undefined)) return undefined;
    try {
      const history = broker.historyNow(sub.channel, since ? { since } : { limit: 0 });
      if (sub.present) {
        presenceStore.addNow?.(sub.channel, sub.session.clientInfo());
        sub.inPresence = true;
      }
      return history;
    } catch (error) {
      this.#removeSubscription(sub);
      throw brokerFailure(error);
    }
  }

  async #subscribeLater(
    sub: Subscription,
    state: ChannelState,
    since: Position | undefined,
  ): Promise<SubscribeOutcome> {
    const { channel, session } = sub;
    let history: HistoryResult;
    try {
      await state.ready;
      history = await this.broker.history(channel, since ? { since } : { limit: 0 });
      if (sub.present) {
        await this.presenceStore.add(channel, session.clientInfo());
        sub.inPresence = true;
      }
    } catch (error) {
      this.#removeSubscription(sub);
      throw brokerFailure(error);
    }
    return this.#subscribed(sub, since, history);
  }

  /** Merges history with what was held meanwhile and announces the subscriber. */
  #subscribed(sub: Subscription, since: Position | undefined, history: HistoryResult): SubscribeOutcome {
    const { channel, session } = sub;
    if (session.closed || session.subscriptions.get(channel) !== sub) {
      // Ended while being set up: #detach ran before the presence entry existed, so undo it here.
      if (sub.inPresence) void this.presenceStore.remove(channel, session.id).catch(() => undefined);
      throw new HeraldError('not_subscribed', 'the subscription ended while it was being set up');
    }
    const merged = mergeRecovery(since, history, sub.pending ?? []);
    sub.offset = merged.position.offset;
    sub.epoch = merged.position.epoch;
    if (sub.present) void this.#broadcast({ kind: 'join', channel, client: session.clientInfo() });
    this.#emit('subscribed', sub);
    return {
      subscription: sub,
      position: merged.position.offset >= history.top.offset ? merged.position : history.top,
      ...(merged.recovered === undefined ? {} : { recovered: merged.recovered }),
      publications: merged.publications,
    };
  }

  /** Releases the live publications held while the subscribe answer was prepared. */
  activate(sub: Subscription): void {
    sub.session.activate(sub, (record) => new Delivery(record));
  }

  unsubscribe(session: Session, channel: unknown): void {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
    const sub = session.subscriptions.get(channel);
    if (sub !== undefined) this.#removeSubscription(sub);
  }

  /** Called by a session whose subscription saw a hole or a new epoch (SessionOwner). */
  lostPosition(sub: Subscription): void {
    this.#removeSubscription(sub);
    sub.session.transport.writeUnsubscribed(sub.channel, UnsubscribeCode.InsufficientState, 'insufficient state');
  }

  /** Called by a channel state that could not fill a hole (ChannelStateOwner). */
  lostPositions(state: ChannelState): void {
    for (const sub of [...state.subscribers]) this.lostPosition(sub);
  }

  // ---- publish, history, presence ---------------------------------------------------------

  /**
   * Validates and publishes. `publisher` is set for client publishes: its `publish` patterns
   * apply and its `info` travels with the publication. Resolves after the broker stored it.
   */
  async publish(input: PublishInput, publisher?: Credentials): Promise<PublishAnswer> {
    const { channel, event, ephemeral, idempotencyKey } = input;
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
    if (publisher !== undefined && !publisher.canPublish(channel)) {
      throw new HeraldError('forbidden', `not permitted to publish to ${channel}`);
    }
    if (event !== undefined) {
      if (!isControlFreeText(event, MAX_EVENT_NAME)) {
        throw new HeraldError(
          'bad_request',
          'event must be a string of 1 to 1000 characters without control characters',
        );
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
    let dataJson: string;
    try {
      dataJson = JSON.stringify(input.data);
    } catch {
      // JSON.parse takes nesting that JSON.stringify overflows the stack on: a client error, not a 500.
      throw new HeraldError('bad_request', 'data is nested too deeply');
    }
    // JSON text is mostly ASCII: the length is a cheap lower bound before counting bytes exactly.
    if (dataJson.length > this.limits.maxMessageBytes || Buffer.byteLength(dataJson) > this.limits.maxMessageBytes) {
      throw new HeraldError('too_large', `data is larger than ${this.limits.maxMessageBytes} bytes`);
    }
    let extensions: Record<string, unknown> | undefined;
    for (const [name, parse] of this.#extensions) {
      const value = (input as Readonly<Record<string, unknown>>)[name];
      if (value !== undefined) (extensions ??= {})[name] = parse(value, { channel, publisher });
    }
    if (!this.broker.ready)
      throw new HeraldError('broker_unavailable', 'the broker is not connected; nothing was published');
    let result;
    try {
      result = await this.broker.publish({
        channel,
        dataJson,
        ts: this.#now(),
        ephemeral: ephemeral === true,
        ...(event === undefined ? {} : { event }),
        ...(publisher?.infoJson === undefined ? {} : { infoJson: publisher.infoJson }),
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      });
    } catch (error) {
      throw brokerFailure(error);
    }
    const { record } = result;
    if (!result.duplicate) {
      this.stats.publications++;
      this.#emit('published', record, publisher, extensions ?? NO_EXTENSIONS);
    }
    return record.offset === 0 ? {} : { offset: record.offset, epoch: record.epoch };
  }

  async history(channel: unknown, input: HistoryInput): Promise<HistoryResult> {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
    const limit = input.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new HeraldError('bad_request', 'limit must be a non-negative integer');
    }
    try {
      return await this.broker.history(channel, {
        ...(input.since === undefined ? {} : { since: input.since }),
        limit: Math.min(limit ?? this.limits.historySize, this.limits.historySize),
      });
    } catch (error) {
      throw brokerFailure(error);
    }
  }

  async presence(channel: unknown): Promise<ClientInfo[]> {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
    try {
      return await this.presenceStore.list(channel);
    } catch (error) {
      throw brokerFailure(error);
    }
  }

  async channels(): Promise<ChannelCount[]> {
    try {
      return await this.presenceStore.channels();
    } catch (error) {
      throw brokerFailure(error);
    }
  }

  /** Ends every session of a user, on every node sharing the broker. */
  async disconnectUser(userId: string, info: { code: number; reason: string }): Promise<void> {
    await this.#broadcast({ kind: 'disconnect_user', userId, ...info });
  }

  /** Channels with at least one subscriber on this node. */
  get localChannelCount(): number {
    return this.#channels.size;
  }

  userSessionCount(userId: string): number {
    return this.#usersSessions.get(userId)?.size ?? 0;
  }

  // ---- internals --------------------------------------------------------------------------

  #attach(sub: Subscription): ChannelState {
    let state = this.#channels.get(sub.channel);
    if (state === undefined) {
      state = new ChannelState(sub.channel, this);
      this.#channels.set(sub.channel, state);
      state.ready.catch(() => undefined);
    }
    state.subscribers.add(sub);
    if (sub.joinLeave) state.joinLeaveSubscribers.add(sub);
    return state;
  }

  #removeSubscription(sub: Subscription): void {
    if (sub.session.subscriptions.get(sub.channel) !== sub) return;
    sub.session.subscriptions.delete(sub.channel);
    this.#detach(sub);
  }

  /** Takes a subscription out of its channel and presence; the channel goes when nobody is left. */
  #detach(sub: Subscription): void {
    this.#emit('unsubscribed', sub);
    const state = this.#channels.get(sub.channel);
    state?.joinLeaveSubscribers.delete(sub);
    if (state !== undefined && state.subscribers.delete(sub) && state.idle) {
      this.#channels.delete(sub.channel);
      this.broker.unsubscribe(sub.channel).catch((error: unknown) => {
        this.logger.warn({ err: error, channel: sub.channel }, 'broker unsubscribe failed');
      });
    }
    if (sub.inPresence) {
      sub.inPresence = false;
      const client = sub.session.clientInfo();
      this.presenceStore.remove(sub.channel, client.clientId).catch((error: unknown) => {
        this.logger.warn({ err: error, channel: sub.channel }, 'presence remove failed');
      });
      void this.#broadcast({ kind: 'leave', channel: sub.channel, client });
    }
  }

  async #broadcast(message: ControlMessage): Promise<void> {
    try {
      await this.broker.broadcast(message);
    } catch (error) {
      this.logger.warn({ err: error, kind: message.kind }, 'broker broadcast failed');
    }
  }

  #onControl(message: ControlMessage): void {
    if (message.kind === 'disconnect_user') {
      const sessions = this.#usersSessions.get(message.userId);
      if (sessions === undefined) return;
      for (const session of [...sessions]) {
        this.endSession(session, { code: message.code, reason: message.reason, reconnect: false });
      }
      return;
    }
    const state = this.#channels.get(message.channel);
    if (state === undefined) return;
    for (const sub of state.joinLeaveSubscribers) {
      if (sub.pending === undefined && sub.session.id !== message.client.clientId) {
        sub.session.transport.writeJoinLeave(message.kind, message.channel, message.client);
      }
    }
  }

  #indexUser(session: Session): void {
    const userId = session.userId;
    if (userId === '') return;
    let sessions = this.#usersSessions.get(userId);
    if (sessions === undefined) this.#usersSessions.set(userId, (sessions = new Set()));
    sessions.add(session);
  }

  #unindexUser(session: Session): void {
    const sessions = this.#usersSessions.get(session.userId);
    if (sessions === undefined) return;
    sessions.delete(session);
    if (sessions.size === 0) this.#usersSessions.delete(session.userId);
  }
}

const NO_EXTENSIONS: PublishExtensions = Object.freeze({});

function brokerFailure(error: unknown): HeraldError {
  if (error instanceof HeraldError) return error;
  return new HeraldError('broker_unavailable', 'the broker did not answer; try again');
}
