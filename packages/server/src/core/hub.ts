/**
 * The transport-free core: sessions, channels, the publish pipeline and subscribe-with-recovery.
 * Transports call in with decoded requests and get answers back; the broker calls in with
 * publications. Nothing here knows about sockets, HTTP or JSON framing.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  CloseCode,
  HeraldError,
  UNSUBSCRIBE_CODES,
  UnsubscribeCode,
  closeCodeInfo,
  closeInfo,
  isValidChannel,
  type ClientInfo,
  type DisconnectInfo,
  type Position,
} from '@herald/protocol';
import type { Logger } from 'pino';
import type {
  Broker,
  ChannelCount,
  ConnectionTarget,
  ControlMessage,
  HistoryResult,
  PresenceStore,
  PublicationRecord,
  PublishDraft,
  PublishResult,
} from '../broker/broker.js';
import { TopConflictError } from '../broker/broker.js';
import { ChannelState, type ChannelStateOwner } from './channel-state.js';
import { requireChannel } from '../auth/channel-access.js';
import { ConcurrencyLimit } from './concurrency-limit.js';
import { TimeIndex } from './time-index.js';
import type { Credentials } from './credentials.js';
import type { HubHooks, PublishExtensionParser, PublishExtensions } from './hooks.js';
import { RESERVED_NAMESPACE, publishDraft, type PublishInput } from './publish-draft.js';
import { AppendWindows } from './append-window.js';
import { mergeRecovery } from './recovery.js';
import { STREAM_SCAN_BYTES, STREAM_SCAN_LIMIT } from './open-streams.js';
import { openStreamsSoFar, rollUp } from './roll-up.js';
import { replayRest, type Pacer, type ReplayOwner } from './replay.js';
import {
  ChannelSubscription,
  ClientSession,
  type QueueLimits,
  type Session,
  type SessionOwner,
  type SessionTransport,
  type Subscription,
} from './session.js';
import { HubStats, type HubStatsView } from './stats.js';
import { answerNodeRequest } from './node-answers.js';
import { userSessionsEverywhere } from './cluster.js';

export type { PublishInput } from './publish-draft.js';

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
  /** This node's name in `GET /api/info` and `/api/connections`; default: host name, pid and a random tag. */
  readonly node?: string;
  /** The roll-up window of text-stream appends in ms; 0 delivers each append at once. Default 40. */
  readonly streamWindowMs?: number;
}

export type PublishAnswer = Position | Record<string, never>;

/** What `Hub.publish` reports beside its answer. */
export interface PublishOutcome {
  duplicate: boolean;
}

/** What `Hub.publish` reports beside its answer. */
export interface PublishOutcome {
  duplicate: boolean;
}

export interface SubscribeOptions {
  readonly since?: Position;
  readonly joinLeave?: boolean;
  /** Long-poll waiters are not clients anyone can see: they stay out of presence. */
  readonly present?: boolean;
  /**
   * How this subscriber appears in the channel's presence and join/leave pushes, when not as its
   * session's token identity: a protocol whose users identify per channel (Pusher's presence
   * `channel_data`), or a subscribe hook that answers per-subscription info.
   */
  readonly member?: { readonly userId?: string; readonly info?: unknown };
  /**
   * The subscribe hook allowed a channel outside the credentials' patterns: the patterns are not
   * checked, now nor when the credentials are refreshed.
   */
  readonly granted?: boolean;
  /**
   * Made by the backend (`POST /api/subscribe`, the token's `subs`): the token's `channels`
   * patterns do not apply, and a later client `subscribe` to the channel takes it over.
   */
  readonly server?: boolean;
}

export interface SubscribeOutcome {
  readonly subscription: Subscription;
  /** What the answer names as the channel's position: its latest stored offset and epoch. */
  readonly position: Position;
  readonly recovered?: boolean;
  /** The first page of missed publications (within the queue bound), oldest first. */
  readonly publications: readonly PublicationRecord[];
  /** More missed publications follow the first page: `activate` serves them, paced by the client. */
  readonly more: boolean;
  /**
   * For a subscriber without a position: each text stream still open, rolled up to its text so
   * far (docs/streams.md). `activate` writes them as publications after the answer; their offsets
   * lie at or below the answer's position, which they do not move.
   */
  readonly streams?: readonly PublicationRecord[];
}

/** A subscribe's first read, and where it read from for a joiner's open streams. */
interface FirstRead {
  readonly history: HistoryResult;
  readonly join: Position | undefined;
}

/** The channel's newest publications, read once per node for the open streams (open-streams.ts). */
const STREAM_SCAN = { limit: STREAM_SCAN_LIMIT, maxBytes: STREAM_SCAN_BYTES };

export interface HistoryInput {
  /** At most this many stored publications are read (a roll-up answers fewer). */
  readonly limit?: number;
  readonly since?: Position;
  /** The stored publications as they are: text streams not rolled up (docs/streams.md). */
  readonly raw?: boolean;
}

/**
 * History reads in flight for hole fills and post-reconnect resyncs. Enough to refill a few
 * thousand channels within seconds on a local broker, few enough not to flood one that just
 * came back.
 */
const HISTORY_FILLS_IN_FLIGHT = 32;

const NO_EXTENSIONS: PublishExtensions = Object.freeze({});

/** The publish fields the hub itself reads; extensions may not take these names. */
const PUBLISH_FIELDS = ['channel', 'data', 'event', 'ephemeral', 'idempotencyKey', 'stream', 'append'];

/** The default roll-up window of text-stream appends (docs/streams.md). */
export const DEFAULT_STREAM_WINDOW_MS = 40;

export class Hub {
  readonly limits: HubLimits;
  readonly broker: Broker;
  readonly presenceStore: PresenceStore;
  readonly logger: Logger;
  /** Paces hole fills and resyncs (ChannelStateOwner). */
  readonly historyReads = new ConcurrencyLimit(HISTORY_FILLS_IN_FLIGHT);
  readonly #stats = new HubStats();
  readonly #sessions = new Set<ClientSession>();
  /** This node's name, as the server API reports it. */
  readonly node: string;
  readonly #channels = new Map<string, ChannelState>();
  readonly #usersSessions = new Map<string, Set<ClientSession>>();
  /** Sessions whose token expires, by second, for the expiry sweep (`expiredSessions`). */
  readonly #expiries = new TimeIndex<ClientSession>((session) => session.credentials.expiresAt);
  readonly #now: () => number;
  readonly #hooks: HubHooks[] = [];
  readonly #extensions = new Map<string, PublishExtensionParser>();
  /** What sessions and replays may call back: the writable counters stay out of the public surface. */
  readonly #owner: SessionOwner & ReplayOwner & ChannelStateOwner;
  readonly #windows: AppendWindows<ChannelSubscription> | undefined;
  #accepting = false;

  constructor(config: HubConfig) {
    this.broker = config.broker;
    this.presenceStore = config.presence;
    this.limits = Object.freeze({ ...config.limits });
    this.logger = config.logger;
    this.#now = config.now ?? Date.now;
    this.node = config.node ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 4)}`;
    const windowMs = config.streamWindowMs ?? DEFAULT_STREAM_WINDOW_MS;
    this.#windows =
      windowMs > 0
        ? new AppendWindows<ChannelSubscription>(windowMs, { flush: (sub) => sub.session.flushWindow(sub) })
        : undefined;
    this.#owner = {
      appendWindows: this.#windows,
      stats: this.#stats,
      limits: this.limits,
      broker: this.broker,
      historyReads: this.historyReads,
      endSession: (session, info) => this.endSession(session, info),
      lostPosition: (sub) => this.#lostPosition(sub),
      lostPositions: (state) => {
        for (const sub of [...state.subscribers]) this.#lostPosition(sub);
      },
    };
  }

  /** The hub's counters (read-only; the core keeps them). */
  get stats(): HubStatsView {
    return this.#stats;
  }

  /** Counts a refused client credential; transports that authenticate outside the core call this. */
  countAuthFailure(): void {
    this.#stats.authFailures++;
  }

  /** Whether new connections are welcome: started, broker connected, not draining. */
  get ready(): boolean {
    return this.#accepting && this.broker.ready;
  }

  /** The clock the hub runs on (injected in tests). */
  now(): number {
    return this.#now();
  }

  async start(): Promise<void> {
    await this.broker.start({
      publication: (record) => this.#channels.get(record.channel)?.dispatch(record),
      control: (message) => this.#onControl(message),
      request: (message) => answerNodeRequest(this, message),
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
    const goodbye = closeInfo(CloseCode.GoingAway, 'hub shutting down');
    for (const session of [...this.#sessions]) this.endSession(session, goodbye);
    this.#windows?.close();
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
    if (PUBLISH_FIELDS.includes(name) || this.#extensions.has(name)) {
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

  /** Open sessions on this node. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The open sessions on this node, as read-only views (a snapshot: ending one while iterating is safe). */
  sessions(): Session[] {
    return [...this.#sessions];
  }

  /** This node's open sessions of a user, or the one session with that id (none: empty). */
  sessionsOf(target: ConnectionTarget): Session[] {
    if ('user' in target) return [...(this.#usersSessions.get(target.user) ?? [])];
    // A scan rather than an index: a rare backend call should not cost every session a map entry.
    for (const session of this.#sessions) if (session.id === target.client) return [session];
    return [];
  }

  /** Throws `rate_limited` when the user already holds as many sessions as `maxSessionsPerUser`. */
  openSession(transport: SessionTransport, credentials: Credentials): Session {
    this.admitUser(credentials.userId);
    const session = new ClientSession(randomUUID(), transport, credentials, this.#owner, this.#now());
    this.#sessions.add(session);
    this.#expiries.add(session);
    this.#stats.connection(transport.kind, 1);
    this.#indexUser(session);
    this.#emit('sessionOpened', session);
    return session;
  }

  /**
   * The per-user connection cap on this node, checked by `openSession`; transports check
   * `admitUserEverywhere` first, which counts every node.
   */
  admitUser(userId: string): void {
    const max = this.limits.maxSessionsPerUser ?? 0;
    if (max > 0 && userId !== '' && this.userSessionCount(userId) >= max) {
      throw new HeraldError('rate_limited', `at most ${max} connections per user`);
    }
  }

  /**
   * The per-user cap counted on every node sharing the broker (`admitUser` is this node's count
   * only): asks every node for the user's sessions. Checked before a session opens, so two
   * connections of one user opening at the same moment on two nodes may both pass: the cap is
   * exact for a user connecting one at a time, and can be passed by at most one per node in a race.
   * A node that does not answer counts as none; a broker failure admits (a lost broker already
   * makes the hub not ready).
   */
  async admitUserEverywhere(userId: string): Promise<void> {
    this.admitUser(userId);
    const max = this.limits.maxSessionsPerUser ?? 0;
    if (max === 0 || userId === '') return;
    let count: number;
    try {
      count = await userSessionsEverywhere(this, userId);
    } catch (error) {
      this.logger.warn({ err: error }, 'per-user cap not checked across nodes: the broker did not answer');
      return;
    }
    if (count >= max) throw new HeraldError('rate_limited', `at most ${max} connections per user`);
  }

  /** Ends a session: removes its subscriptions (with presence and leave), then tells the transport. */
  endSession(session: Session, info: DisconnectInfo): void {
    const s = own(session);
    if (s.closed) return;
    this.#sessions.delete(s);
    this.#expiries.delete(s);
    this.#stats.connection(s.kind, -1);
    this.#unindexUser(s);
    for (const sub of s.close()) this.#detach(sub);
    s.transport.end(info);
    this.#emit('sessionClosed', s, info);
  }

  /** Ends a session whose client stopped taking what it was sent (4004). */
  endSlowSession(session: Session): void {
    this.#stats.slowConsumerDisconnects++;
    this.endSession(session, closeInfo(CloseCode.SlowConsumer));
  }

  /** Ends a session whose client sent commands faster than its rate (4005). */
  endRateLimitedSession(session: Session, reason: string): void {
    this.#stats.rateLimited++;
    this.endSession(session, closeInfo(CloseCode.RateLimited, reason));
  }

  /** Replaces a session's credentials after `refresh`; subscriptions no longer permitted end. */
  refresh(session: Session, credentials: Credentials): void {
    const s = own(session);
    if (credentials.userId !== s.userId) {
      throw new HeraldError('forbidden', 'a refreshed token must be for the same user');
    }
    this.#replaceCredentials(s, credentials);
    for (const sub of [...s.subscriptions.values()]) {
      if (!sub.granted && !credentials.canSubscribe(sub.channel)) {
        this.#removeSubscription(sub);
        const code = UnsubscribeCode.Forbidden;
        s.transport.writeUnsubscribed(sub.channel, code, UNSUBSCRIBE_CODES[code].reason);
      }
    }
  }

  /**
   * Gives an anonymous session a user (a protocol that signs users in on an open connection:
   * Pusher's `pusher:signin`). From then on the session counts against the user's cap and
   * `disconnectUser` reaches it on every node. A session that already has a user keeps it.
   */
  signIn(session: Session, credentials: Credentials): void {
    const s = own(session);
    if (s.userId !== '') throw new HeraldError('forbidden', 'the connection is already signed in');
    if (credentials.userId === '') throw new HeraldError('bad_request', 'a user id is required');
    this.admitUser(credentials.userId);
    this.#replaceCredentials(s, credentials);
    this.#indexUser(s);
  }

  /** Sessions whose token expired; the server's sweep ends them with 4003. */
  expiredSessions(now = this.#now()): Iterable<Session> {
    return this.#expiries.due(now);
  }

  /** The session's expiry moves in the index with its credentials. */
  #replaceCredentials(session: ClientSession, credentials: Credentials): void {
    this.#expiries.delete(session);
    session.replaceCredentials(credentials);
    this.#expiries.add(session);
  }

  // ---- subscribe ------------------------------------------------------------------------

  /**
   * Registers the subscriber first (holding live publications), then reads history, then merges:
   * so nothing published during the read is lost or doubled. The caller sends the answer and
   * then calls `activate`, which serves the rest of a paged recovery and releases what was held;
   * live publications follow the answer.
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
      const sub = this.#addSubscription(own(session), channel, options);
      const state = this.#attach(sub);
      const read = state.receiving ? this.#readNow(sub, state, options.since) : undefined;
      if (read === undefined) return this.#subscribeLater(sub, state, options.since);
      return this.#subscribed(sub, state, options.since, read);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #addSubscription(session: ClientSession, channel: unknown, options: SubscribeOptions): ChannelSubscription {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
    if (options.granted !== true && options.server !== true)
      requireChannel(session.credentials, channel, 'subscribe to');
    const existing = session.subscriptions.get(channel);
    // The client takes over what the backend subscribed it to, with its own `since` (a resume).
    if (existing?.server === true && options.server !== true) this.#removeSubscription(existing);
    else if (existing !== undefined) throw new HeraldError('already_subscribed', `already subscribed to ${channel}`);
    if (session.subscriptions.size >= this.limits.maxSubscriptionsPerSession) {
      throw new HeraldError(
        'bad_request',
        `at most ${this.limits.maxSubscriptionsPerSession} subscriptions per connection`,
      );
    }
    const sub = new ChannelSubscription(
      channel,
      session,
      options.joinLeave === true,
      options.present ?? true,
      options.member,
    );
    sub.granted = options.granted === true;
    sub.server = options.server === true;
    session.addSubscription(sub);
    return sub;
  }

  /**
   * The first read of a subscribe: the first page after `since`; without it, the top only, or,
   * when text streams are open on the channel, everything from the oldest one's opening, which
   * `#subscribed` turns into those streams' text so far (docs/streams.md).
   */
  #firstRead(since: Position | undefined): { since?: Position; limit?: number; maxBytes?: number } {
    return since ? { since, maxBytes: this.limits.maxQueueBytes } : { limit: 0 };
  }

  /** Where a subscriber without a position reads from: the oldest open stream's opening, if any. */
  #joinFrom(state: ChannelState, tail: HistoryResult | undefined): Position | undefined {
    if (tail !== undefined) state.streams.scan(tail.publications, tail.top);
    return state.streams.joinFrom();
  }

  /** History and the presence entry without waiting, when broker and store offer it; else undefined. */
  #readNow(sub: ChannelSubscription, state: ChannelState, since: Position | undefined): FirstRead | undefined {
    const { broker, presenceStore } = this;
    const historyNow = broker.historyNow?.bind(broker);
    if (historyNow === undefined || (sub.present && presenceStore.addNow === undefined)) return undefined;
    try {
      // A channel's first subscribe on this node reads its newest publications, not just the top:
      // the same read tells whether text streams are open (open-streams.ts).
      const tail = since === undefined && !state.streams.scanned ? historyNow(sub.channel, STREAM_SCAN) : undefined;
      const join = since === undefined ? this.#joinFrom(state, tail) : undefined;
      const history =
        tail !== undefined && join === undefined ? tail : historyNow(sub.channel, this.#firstRead(since ?? join));
      if (sub.present) {
        presenceStore.addNow?.(sub.channel, sub.clientInfo());
        sub.inPresence = true;
      }
      return { history, join };
    } catch (error) {
      this.#removeSubscription(sub);
      throw brokerFailure(error);
    }
  }

  async #subscribeLater(
    sub: ChannelSubscription,
    state: ChannelState,
    since: Position | undefined,
  ): Promise<SubscribeOutcome> {
    const { channel } = sub;
    let read: FirstRead;
    try {
      await state.ready;
      let join: Position | undefined;
      let tail: HistoryResult | undefined;
      if (since === undefined) {
        tail = state.streams.scanned ? undefined : await this.broker.history(channel, STREAM_SCAN);
        join = this.#joinFrom(state, tail);
      }
      const history =
        tail !== undefined && join === undefined
          ? tail
          : await this.broker.history(channel, this.#firstRead(since ?? join));
      read = { history, join };
      if (sub.present) {
        await this.presenceStore.add(channel, sub.clientInfo());
        sub.inPresence = true;
      }
    } catch (error) {
      this.#removeSubscription(sub);
      throw brokerFailure(error);
    }
    return this.#subscribed(sub, state, since, read);
  }

  /** Merges history with what was held meanwhile and announces the subscriber. */
  #subscribed(
    sub: ChannelSubscription,
    state: ChannelState,
    since: Position | undefined,
    read: FirstRead,
  ): SubscribeOutcome {
    const { channel, session } = sub;
    const { history, join } = read;
    if (session.closed || session.subscriptions.get(channel) !== sub) {
      // Ended while being set up: #detach ran before the presence entry existed, so undo it here.
      if (sub.inPresence) void this.presenceStore.remove(channel, session.id).catch(() => undefined);
      throw new HeraldError('not_subscribed', 'the subscription ended while it was being set up');
    }
    let streams: readonly PublicationRecord[] = [];
    let merged = join === undefined ? undefined : mergeRecovery(join, history, sub.held);
    if (merged !== undefined && merged.recovered === true && !merged.more) {
      // A joiner without a position: the open streams' text so far, then live from the top.
      const joined = openStreamsSoFar(merged.publications);
      state.streams.keepOnly(joined.open);
      streams = joined.records;
      merged = { position: merged.position, publications: [], live: merged.live, more: false };
    } else if (merged !== undefined) {
      // The streams could not be read whole (trimmed, or longer than the bound): live from the top.
      state.streams.keepOnly(new Set());
      merged = mergeRecovery(undefined, history, sub.held);
    } else {
      merged = mergeRecovery(since, history, sub.held);
    }
    // The position before the answer's publications; `activate` moves it past them.
    sub.moveTo(merged.recovered === true && since !== undefined ? since : merged.position);
    if (sub.present) void this.#broadcast({ kind: 'join', channel, client: sub.clientInfo() });
    this.#emit('subscribed', sub);
    return {
      subscription: sub,
      position: merged.position.offset >= history.top.offset ? merged.position : history.top,
      ...(merged.recovered === undefined ? {} : { recovered: merged.recovered }),
      publications: rollUp(merged.publications),
      more: merged.more,
      ...(streams.length === 0 ? {} : { streams }),
    };
  }

  /**
   * Call once the subscribe answer is written. Delivers the answer's publications (or, with
   * `inAnswer`, notes that the answer carried them), serves the rest of a paged recovery paced by
   * `pacer`, then releases the held live publications: live pushes follow with no gap and no
   * duplicate. Without a pacer only the first page is served and the subscription stays held (a
   * long-poll answers right after). A promise only when there is more to replay.
   */
  activate(outcome: SubscribeOutcome, pacer?: Pacer, inAnswer = false): void | Promise<void> {
    const sub = ownSubscription(outcome.subscription);
    const session = sub.session;
    if (inAnswer) {
      const last = outcome.publications.at(-1);
      if (last !== undefined) sub.moveTo(last);
    } else {
      for (const record of outcome.publications) session.replay(record, sub);
    }
    // A joiner's open text streams so far: after the answer, as publications, on every transport.
    for (const record of outcome.streams ?? []) session.replay(record, sub);
    if (!outcome.more) return session.activate(sub);
    if (pacer === undefined) return;
    return replayRest(this.#owner, sub, sub.position, pacer).then((live) => {
      if (live) session.activate(sub);
    });
  }

  unsubscribe(session: Session, channel: unknown): void {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
    const sub = own(session).subscriptions.get(channel);
    if (sub !== undefined) this.#removeSubscription(sub);
  }

  /**
   * Subscribes a session on the backend's behalf: no permission check, the transport is told
   * (`writeSubscribed`) with the channel's position, and live publications follow. False when the
   * session cannot take it (its transport has no `writeSubscribed`, it is already subscribed, or
   * it ended meanwhile). Rejects on a bad channel or a broker failure.
   */
  async serverSubscribe(session: Session, channel: string): Promise<boolean> {
    const s = own(session);
    const transport = s.transport;
    if (transport.writeSubscribed === undefined || s.closed || s.subscriptions.has(channel)) return false;
    let outcome: SubscribeOutcome;
    try {
      outcome = await this.subscribe(s, channel, { server: true });
    } catch (error) {
      if (error instanceof HeraldError && error.code === 'not_subscribed') return false;
      throw error;
    }
    transport.writeSubscribed(channel, outcome.position);
    void this.activate(outcome);
    return true;
  }

  /** Ends a session's subscription on the backend's behalf (`unsub` 2000); false when it had none. */
  serverUnsubscribe(session: Session, channel: string): boolean {
    const s = own(session);
    const sub = s.subscriptions.get(channel);
    if (sub === undefined || !s.removeSubscription(sub)) return false;
    this.#detach(sub);
    const code = UnsubscribeCode.Server;
    s.transport.writeUnsubscribed(channel, code, UNSUBSCRIBE_CODES[code].reason);
    return true;
  }

  /** A subscription saw a hole or a new epoch: it ends loudly (`unsub` 2500; SSE reconnects with 4007). */
  #lostPosition(sub: ChannelSubscription): void {
    if (!sub.session.removeSubscription(sub)) return;
    this.#detach(sub);
    const code = UnsubscribeCode.InsufficientState;
    sub.session.transport.writeUnsubscribed(sub.channel, code, UNSUBSCRIBE_CODES[code].reason);
  }

  // ---- publish, history, presence ---------------------------------------------------------

  /**
   * Validates and publishes. `publisher` is set for client publishes: its `publish` patterns
   * apply and its `info` travels with the publication. Resolves after the broker stored it.
   * Nobody outside the hub may publish to the reserved `_herald:` namespace. `outcome.duplicate`
   * is set to whether the broker found the idempotency key already applied (nothing new was
   * stored; the answer is the first one's), for callers that count.
   */
  async publish(input: PublishInput, publisher?: Credentials, outcome?: PublishOutcome): Promise<PublishAnswer> {
    const draft = publishDraft(input, publisher, this.limits.maxMessageBytes, this.#now());
    let extensions: Record<string, unknown> | undefined;
    for (const [name, parse] of this.#extensions) {
      const value = (input as Readonly<Record<string, unknown>>)[name];
      if (value !== undefined) (extensions ??= {})[name] = parse(value, { channel: draft.channel, publisher });
    }
    const result = await this.#store(draft);
    const { record } = result;
    if (outcome !== undefined) outcome.duplicate = result.duplicate;
    if (!result.duplicate) {
      this.#stats.publications++;
      this.#emit('published', record, publisher, extensions ?? NO_EXTENSIONS);
    }
    return record.offset === 0 ? {} : { offset: record.offset, epoch: record.epoch };
  }

  /**
   * A publication of the hub's own (the admin feed's snapshots): it may use the reserved
   * namespace, and being no user's traffic it is not counted and reaches no `published` hook.
   */
  async publishInternal(input: PublishInput): Promise<PublishAnswer> {
    const draft = publishDraft(input, undefined, this.limits.maxMessageBytes, this.#now(), true);
    const { record } = await this.#store(draft);
    return record.offset === 0 ? {} : { offset: record.offset, epoch: record.epoch };
  }

  /**
   * Stores a draft a protocol plugin built itself (Durable Streams: its own `info` and limits, a
   * compare-and-append `expectedTop`), counted and announced to the `published` hooks like any
   * publish. The reserved namespace stays the hub's; a `TopConflictError` is passed on as it is.
   */
  async publishDraft(draft: PublishDraft): Promise<PublishResult> {
    if (draft.channel.startsWith(RESERVED_NAMESPACE)) {
      throw new HeraldError('forbidden', `channels starting with "${RESERVED_NAMESPACE}" are reserved for the hub`);
    }
    const result = await this.#store(draft);
    if (!result.duplicate) {
      this.#stats.publications++;
      this.#emit('published', result.record, undefined, NO_EXTENSIONS);
    }
    return result;
  }

  async #store(draft: PublishDraft): Promise<PublishResult> {
    if (!this.broker.ready)
      throw new HeraldError('broker_unavailable', 'the broker is not connected; nothing was published');
    try {
      return await this.broker.publish(draft);
    } catch (error) {
      if (error instanceof TopConflictError) throw error;
      throw brokerFailure(error);
    }
  }

  /**
   * A channel's history. An answer holds at most the queue bound of publications (the oldest ones
   * after `since`, or the newest ones without it); a client pages on with `since`. `reader` is set
   * for clients: they read only channels they may subscribe to.
   */
  async history(channel: unknown, input: HistoryInput, reader?: Credentials): Promise<HistoryResult> {
    requireReadable(channel, reader);
    const limit = input.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new HeraldError('bad_request', 'limit must be a non-negative integer');
    }
    try {
      const history = await this.broker.history(channel, {
        ...(input.since === undefined ? {} : { since: input.since }),
        limit: Math.min(limit ?? this.limits.historySize, this.limits.historySize),
        maxBytes: this.limits.maxQueueBytes,
      });
      return input.raw === true ? history : { ...history, publications: rollUp(history.publications) };
    } catch (error) {
      throw brokerFailure(error);
    }
  }

  /** Who is subscribed to a channel, on every node. `reader` as for `history`. */
  async presence(channel: unknown, reader?: Credentials): Promise<ClientInfo[]> {
    requireReadable(channel, reader);
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

  /**
   * Ends every session of a user, on every node sharing the broker. `reconnect` overrides the
   * registry's advice for `code` (a banned user should not come back, whatever the code).
   */
  async disconnectUser(userId: string, info: { code: number; reason: string; reconnect?: boolean }): Promise<void> {
    await this.#broadcast({ kind: 'disconnect_user', userId, ...info });
  }

  /**
   * Deletes a channel's history on the broker (a new epoch, offsets from 1). Subscribers anywhere
   * see the next publication in the new epoch and lose their position loudly (`unsub` 2500, SSE
   * 4007); a subscriber resuming from before gets `recovered: false`.
   */
  async removeHistory(channel: unknown): Promise<void> {
    if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
    if (channel.startsWith(RESERVED_NAMESPACE)) {
      throw new HeraldError('forbidden', `channels starting with "${RESERVED_NAMESPACE}" are reserved for the hub`);
    }
    if (!this.broker.ready)
      throw new HeraldError('broker_unavailable', 'the broker is not connected; nothing was removed');
    try {
      await this.broker.removeHistory(channel);
    } catch (error) {
      throw brokerFailure(error);
    }
  }

  /** Channels with at least one subscriber on this node. */
  get localChannelCount(): number {
    return this.#channels.size;
  }

  userSessionCount(userId: string): number {
    return this.#usersSessions.get(userId)?.size ?? 0;
  }

  // ---- internals --------------------------------------------------------------------------

  #attach(sub: ChannelSubscription): ChannelState {
    let state = this.#channels.get(sub.channel);
    if (state === undefined) {
      state = new ChannelState(sub.channel, this.#owner);
      this.#channels.set(sub.channel, state);
      state.ready.catch(() => undefined);
    }
    state.subscribers.add(sub);
    if (sub.joinLeave) state.joinLeaveSubscribers.add(sub);
    return state;
  }

  #removeSubscription(sub: ChannelSubscription): void {
    if (sub.session.removeSubscription(sub)) this.#detach(sub);
  }

  /** Takes a subscription out of its channel and presence; the channel goes when nobody is left. */
  #detach(sub: ChannelSubscription): void {
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
      const client = sub.clientInfo();
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
        const reconnect = message.reconnect ?? closeCodeInfo(message.code)?.reconnect ?? false;
        this.endSession(session, { code: message.code, reason: message.reason, reconnect });
      }
      return;
    }
    const state = this.#channels.get(message.channel);
    if (state === undefined) return;
    for (const sub of state.joinLeaveSubscribers) {
      if (!sub.holding && sub.session.id !== message.client.clientId) {
        sub.session.transport.writeJoinLeave(message.kind, message.channel, message.client);
      }
    }
  }

  #indexUser(session: ClientSession): void {
    const userId = session.userId;
    if (userId === '') return;
    let sessions = this.#usersSessions.get(userId);
    if (sessions === undefined) this.#usersSessions.set(userId, (sessions = new Set()));
    sessions.add(session);
  }

  #unindexUser(session: ClientSession): void {
    const sessions = this.#usersSessions.get(session.userId);
    if (sessions === undefined) return;
    sessions.delete(session);
    if (sessions.size === 0) this.#usersSessions.delete(session.userId);
  }
}

/** The hub's own session behind a view handed out earlier; anything else is a caller's bug. */
function own(session: Session): ClientSession {
  if (!(session instanceof ClientSession)) throw new TypeError('not a session of this hub');
  return session;
}

function ownSubscription(subscription: Subscription): ChannelSubscription {
  if (!(subscription instanceof ChannelSubscription)) throw new TypeError('not a subscription of this hub');
  return subscription;
}

/** Clients read history and presence only of channels they may subscribe to (PROTOCOL.md section 4). */
function requireReadable(channel: unknown, reader: Credentials | undefined): asserts channel is string {
  if (!isValidChannel(channel)) throw new HeraldError('bad_channel', 'channel name is not valid');
  if (reader !== undefined) requireChannel(reader, channel, 'read');
}

function brokerFailure(error: unknown): HeraldError {
  if (error instanceof HeraldError) return error;
  return new HeraldError('broker_unavailable', 'the broker did not answer; try again');
}
