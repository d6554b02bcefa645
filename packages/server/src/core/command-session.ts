/**
 * The commands of one bidirectional connection, whatever its protocol: connect (authentication),
 * ordering, the command rate and the in-flight bound, dispatch with permission checks, answers
 * with backpressure, and the paced replay after a subscribe. A protocol (WebSocket, Socket.IO,
 * ...) is a codec around this: it decodes frames into `receive` calls and encodes the answers it
 * is handed (`CommandPeer`). See docs/architecture.md, "Adding a protocol".
 *
 * Contract with the peer:
 * - Commands are answered exactly once each, in the order they were received: each runs when the
 *   one before it has been answered (and, for a subscribe, its replay written).
 * - Before a command runs, the client must hold at most the queue bound unread; the session waits
 *   for it (`peer.drained()`), and one that takes nothing in time is a slow consumer (4004). So a
 *   client that asks and never reads cannot grow the hub's memory by an answer each time.
 * - Every end the session decides goes through the hub (`endSession`), which calls `peer.end`
 *   once, with the registry's reconnect advice for the code.
 */
import {
  CloseCode,
  HeraldError,
  closeCodeForError,
  closeInfo,
  type ClientInfo,
  type ConnectResult,
  type DisconnectInfo,
} from '@herald/protocol';
import type { HistoryResult } from '../broker/broker.js';
import type { BackendHooks } from '../hooks/backend-hooks.js';
import { hookRefresh, hookedPublish, rpc, subscribeGrant } from '../hooks/decisions.js';
import type { Credentials } from './credentials.js';
import type { Hub, PublishAnswer, SubscribeOutcome } from './hub.js';
import { historyQuery, subscribeOptions } from './params.js';
import type { Pacer } from './replay.js';
import type { Session, SessionTransport } from './session.js';
import { TokenBucket, type RateLimit } from './token-bucket.js';

export type Params = Readonly<Record<string, unknown>>;

/** What a command produced, for the codec to encode in its protocol. */
export type Answer =
  | { readonly method: 'connect'; readonly result: ConnectResult }
  | { readonly method: 'subscribe'; readonly channel: string; readonly outcome: SubscribeOutcome }
  | { readonly method: 'unsubscribe' | 'ping' }
  | { readonly method: 'publish'; readonly result: PublishAnswer }
  | { readonly method: 'presence'; readonly result: { readonly clients: readonly ClientInfo[] } }
  | { readonly method: 'history'; readonly history: HistoryResult }
  | { readonly method: 'refresh'; readonly result: { readonly expiresIn?: number } }
  | { readonly method: 'rpc'; readonly result: { readonly data: unknown } };

/** The protocol side of a command session: the session's transport, plus how answers are written. */
export interface CommandPeer<Ref> extends SessionTransport, Pacer {
  /**
   * Writes an answer. For `subscribe`, returns true when the answer carried the outcome's
   * publications itself (WebSocket's `publications`); otherwise the session writes them after it
   * as publications, in order, before the live ones.
   */
  answer(ref: Ref, answer: Answer): boolean | void;
  /** Writes a command's error answer. */
  refuse(ref: Ref, error: HeraldError): void;
}

/**
 * A command of the protocol's own (Pusher's `pusher:subscribe`, which checks a signature and names
 * the presence member), run in order under the same rate, in-flight bound and backpressure as the
 * built-in commands. A HeraldError it throws is `refuse`d; undefined means there is nothing to
 * answer (the command wrote its own reply through the codec, or the protocol sends none). A
 * `subscribe` answer gets the paced replay and the live publications after it, as the built-in
 * subscribe does.
 */
export type ProtocolCommand<Ref> = (
  session: Session,
  params: Params,
  ref: Ref,
) => Answer | undefined | Promise<Answer | undefined>;

export interface CommandSessionOptions<Ref = unknown> {
  /** Turns the token of a `connect` (undefined: none) into credentials; a HeraldError refuses. */
  readonly authenticate: (token: string | undefined) => Credentials | Promise<Credentials>;
  readonly commandRate: RateLimit;
  readonly pingIntervalSeconds: number;
  /** Whether the protocol authenticates with a `connect` command that must come first (WebSocket). */
  readonly connectCommand: boolean;
  /** The hooks that decide (subscribe, publish, refresh, rpc), when configured. */
  readonly hooks?: BackendHooks;
  /**
   * The protocol's own commands by method name, tried before the built-in ones (so a protocol may
   * also replace one). Commands arrive through `receive` like any other.
   */
  readonly commands?: ReadonlyMap<string, ProtocolCommand<Ref>>;
}

/** Commands waiting behind a slow one before the client counts as flooding. */
const MAX_QUEUED_COMMANDS = 64;

type Outcome = Answer | undefined | Promise<Answer | undefined>;

export class CommandSession<Ref> {
  readonly #hub: Hub;
  readonly #peer: CommandPeer<Ref>;
  readonly #options: CommandSessionOptions<Ref>;
  readonly #rate: TokenBucket;
  #session: Session | undefined;
  /** A connect command has arrived: commands may follow it at once, queued behind its answer. */
  #connectReceived: boolean;
  #ended = false;
  /** A token is being checked: a second connect meanwhile is refused. */
  #connecting = false;
  /** The tail of the command queue; undefined while no command waits (no promise per idle connection). */
  #queue: Promise<void> | undefined;
  #queued = 0;

  constructor(hub: Hub, peer: CommandPeer<Ref>, options: CommandSessionOptions<Ref>) {
    this.#hub = hub;
    this.#peer = peer;
    this.#options = options;
    this.#rate = new TokenBucket(options.commandRate, hub.now());
    this.#connectReceived = !options.connectCommand;
  }

  /** The hub session, once connected. */
  get session(): Session | undefined {
    return this.#session;
  }

  /** Whether the connection ended (commands are ignored from then on). */
  get ended(): boolean {
    return this.#ended || this.#session?.closed === true;
  }

  /**
   * Opens the hub session for credentials the protocol checked at its handshake (Socket.IO). Throws
   * `rate_limited` at the per-user cap and `not_ready` while the hub does not accept connections.
   */
  open(credentials: Credentials): ConnectResult {
    if (!this.#hub.ready) throw new HeraldError('not_ready', 'the hub is not accepting connections');
    const session = this.#hub.openSession(this.#peer, credentials);
    this.#session = session;
    return connectResult(session, this.#options.pingIntervalSeconds, this.#hub.now());
  }

  /**
   * Subscribes the session to its token's `subs` channels on the backend's behalf, once the
   * connect answer is out (each one is announced with a `sub` push). A client `subscribe` to one of
   * them, sent right after connect to resume it, takes it over.
   */
  subscribeClaimed(): void {
    const session = this.#session;
    for (const channel of session?.credentials.subs ?? []) {
      this.#hub.serverSubscribe(session as Session, channel).catch((error: unknown) => {
        this.#hub.logger.warn({ err: error, channel }, "subscription from the token's subs claim failed");
      });
    }
  }

  /**
   * Takes one decoded command; its answer comes through the peer, in order. Every message a
   * client sends reaches the session through this, `reject` or `violation`, so each counts
   * against the command rate (4005 past it), whatever it holds.
   */
  receive(ref: Ref, method: string, params: Params): void {
    if (!this.#admit()) return;
    if (method === 'connect') this.#connectReceived = true;
    else if (!this.#connectReceived) {
      return this.disconnect(closeInfo(CloseCode.ProtocolViolation, 'the first command must be connect'));
    }
    this.#enqueue(() => this.#run(ref, method, params));
  }

  /** A message the codec could not make a command of, but that names one to answer: answered with `error`, in order. */
  reject(ref: Ref, error: HeraldError): void {
    if (!this.#admit()) return;
    this.#enqueue(() => {
      if (!this.ended) this.#peer.refuse(ref, error);
      return this.#done();
    });
  }

  /** A message that breaks the protocol's framing: the connection ends with 4002. */
  violation(reason: string): void {
    if (this.#admit()) this.disconnect(closeInfo(CloseCode.ProtocolViolation, reason));
  }

  /** The command rate: false (and the connection ends with 4005) past it, or once ended. */
  #admit(): boolean {
    if (this.ended) return false;
    if (this.#rate.tryTake(this.#hub.now())) return true;
    this.#rateLimited('too many commands');
    return false;
  }

  #enqueue(run: () => Promise<void> | undefined): void {
    if (++this.#queued > MAX_QUEUED_COMMANDS) return this.#rateLimited('too many commands in flight');
    // With nothing in flight the command runs now; only one that has to wait (a token check, a
    // broker round trip, a client that does not read) leaves a promise to queue behind.
    if (this.#queue === undefined) this.#queue = run();
    else this.#queue = this.#queue.then(run);
  }

  /** Ends the connection, with or without a session yet. */
  disconnect(info: DisconnectInfo): void {
    if (this.#session !== undefined) this.#hub.endSession(this.#session, info);
    else if (!this.#ended) {
      this.#ended = true;
      this.#peer.end(info);
    }
  }

  /** The client's side of the connection closed. */
  peerClosed(reason: string): void {
    this.#ended = true;
    if (this.#session !== undefined) this.#hub.endSession(this.#session, closeInfo(CloseCode.Normal, reason));
  }

  #rateLimited(reason: string): void {
    if (this.#session !== undefined) this.#hub.endRateLimitedSession(this.#session, reason);
    else this.disconnect(closeInfo(CloseCode.RateLimited, reason));
  }

  // ---- running one command --------------------------------------------------------------

  /** Runs one command and answers it; a promise only when it has to wait. */
  #run(ref: Ref, method: string, params: Params): Promise<void> | undefined {
    if (this.ended) return this.#done();
    let outcome: Outcome;
    try {
      outcome =
        this.#peer.bufferedBytes() > this.#hub.limits.maxQueueBytes
          ? this.#afterDrain(ref, method, params)
          : this.#execute(ref, method, params);
    } catch (error) {
      this.#failed(ref, method, error);
      return this.#done();
    }
    if (!(outcome instanceof Promise)) return this.#answered(ref, outcome);
    return outcome.then(
      (answer) => this.#answered(ref, answer),
      (error: unknown) => {
        this.#failed(ref, method, error);
        this.#done();
      },
    );
  }

  /** The next answer waits until the client has taken the previous ones (see the contract above). */
  async #afterDrain(ref: Ref, method: string, params: Params): Promise<Answer | undefined> {
    const taken = await this.#peer.drained();
    if (this.ended) return undefined;
    if (!taken) {
      if (this.#session !== undefined) this.#hub.endSlowSession(this.#session);
      else this.disconnect(closeInfo(CloseCode.SlowConsumer));
      return undefined;
    }
    return this.#execute(ref, method, params);
  }

  #answered(ref: Ref, answer: Answer | undefined): Promise<void> | undefined {
    if (answer === undefined || this.ended) return this.#done();
    const carried = this.#peer.answer(ref, answer) === true;
    if (answer.method === 'connect') this.subscribeClaimed();
    if (answer.method !== 'subscribe') return this.#done();
    // After the answer: the rest of a paged recovery, then the live publications.
    const live = this.#hub.activate(answer.outcome, this.#peer, carried);
    if (live === undefined) return this.#done();
    return live.then(
      () => this.#done(),
      () => this.#done(),
    );
  }

  #failed(ref: Ref, method: string, error: unknown): void {
    if (this.ended) return;
    if (error instanceof HeraldError) return this.#peer.refuse(ref, error);
    this.#hub.logger.error({ err: error, method }, 'command failed');
    this.#peer.refuse(ref, new HeraldError('internal', 'internal error'));
  }

  /** Idle again: drop the settled chain rather than keep a promise per idle connection. */
  #done(): undefined {
    if (--this.#queued === 0) this.#queue = undefined;
    return undefined;
  }

  // ---- the commands ---------------------------------------------------------------------

  #execute(ref: Ref, method: string, params: Params): Outcome {
    if (method === 'connect') return this.#connect(ref, params);
    const session = this.#session;
    if (session === undefined) {
      // Only after a connect that failed without ending the connection (a malformed token param).
      this.disconnect(closeInfo(CloseCode.ProtocolViolation, 'not connected'));
      return undefined;
    }
    const own = this.#options.commands?.get(method);
    if (own !== undefined) return own(session, params, ref);
    const hub = this.#hub;
    switch (method) {
      case 'subscribe': {
        const channel = params.channel;
        const options = subscribeOptions(params);
        const grant = subscribeGrant(this.#options.hooks, session.credentials, channel, session.id);
        if (grant !== undefined) {
          return grant
            .then((g) => hub.subscribe(session, channel, { ...options, ...g }))
            .then((o) => ({ method: 'subscribe', channel: o.subscription.channel, outcome: o }));
        }
        const outcome = hub.subscribe(session, channel, options);
        if (outcome instanceof Promise) {
          return outcome.then((o) => ({ method: 'subscribe', channel: o.subscription.channel, outcome: o }));
        }
        return { method: 'subscribe', channel: outcome.subscription.channel, outcome };
      }
      case 'unsubscribe':
        hub.unsubscribe(session, params.channel);
        return { method: 'unsubscribe' };
      case 'ping':
        return { method: 'ping' };
      case 'publish':
        if (this.#options.hooks?.has('publish') === true) {
          return hookedPublish(this.#options.hooks, session.credentials, params, session.id)
            .then((p) => hub.publish(p, session.credentials))
            .then((result) => ({ method: 'publish', result }));
        }
        return hub.publish(params, session.credentials).then((result) => ({ method: 'publish', result }));
      case 'rpc':
        return rpc(this.#options.hooks, session.credentials, params, session.id).then((result) => ({
          method: 'rpc',
          result,
        }));
      case 'presence':
        return hub
          .presence(params.channel, session.credentials)
          .then((clients) => ({ method: 'presence', result: { clients } }));
      case 'history':
        return hub
          .history(params.channel, historyQuery(params), session.credentials)
          .then((history) => ({ method: 'history', history }));
      case 'refresh':
        return this.#refresh(session, params);
      default:
        throw new HeraldError('bad_request', `${JSON.stringify(method.slice(0, 64))} is not a command`);
    }
  }

  async #refresh(session: Session, params: Params): Promise<Answer> {
    const hooks = this.#options.hooks;
    if (params.token === undefined && session.credentials.viaHook === true && hooks?.has('refresh') === true) {
      // A connection the connect hook opened is extended by the refresh hook, not by a token.
      const extended = await hookRefresh(hooks, session.credentials, session.id);
      this.#hub.refresh(session, extended);
      return { method: 'refresh', result: expiresIn(extended.expiresAt, this.#hub.now()) };
    }
    if (typeof params.token !== 'string') throw new HeraldError('bad_request', 'token is required');
    const credentials = await this.#options.authenticate(params.token);
    this.#hub.refresh(session, credentials);
    return { method: 'refresh', result: expiresIn(credentials.expiresAt, this.#hub.now()) };
  }

  #connect(ref: Ref, params: Params): Outcome {
    if (this.#session !== undefined || this.#connecting) throw new HeraldError('bad_request', 'already connected');
    const token = params.token;
    if (token !== undefined && typeof token !== 'string')
      throw new HeraldError('bad_request', 'token must be a string');
    let credentials: Credentials | Promise<Credentials>;
    try {
      credentials = this.#options.authenticate(token);
    } catch (error) {
      return this.#refused(ref, error);
    }
    // No token, no signature to check: an anonymous session opens at once, without a promise.
    if (!(credentials instanceof Promise)) return this.#opened(ref, credentials);
    this.#connecting = true;
    const admitted = credentials.then(async (c) => {
      await this.#hub.admitUserEverywhere(c.userId);
      return c;
    });
    return admitted.then(
      (c) => {
        this.#connecting = false;
        return this.ended ? undefined : this.#opened(ref, c);
      },
      (error: unknown) => {
        this.#connecting = false;
        return this.#refused(ref, error);
      },
    );
  }

  /** The connect answer, or undefined when the connection was refused and ended instead. */
  #opened(ref: Ref, credentials: Credentials): Answer | undefined {
    try {
      return { method: 'connect', result: this.open(credentials) };
    } catch (error) {
      if (!(error instanceof HeraldError)) throw error;
      this.#peer.refuse(ref, error);
      // Draining or broker lost: try another node (1001). At the per-user cap: back off (4005).
      const code = error.code === 'rate_limited' ? CloseCode.RateLimited : CloseCode.GoingAway;
      this.disconnect(closeInfo(code, error.message));
      return undefined;
    }
  }

  /**
   * A token that was not accepted: the command is answered, then the connection ends with the
   * close code the registry gives that error (1013 when the hub could not check it, else 4001).
   */
  #refused(ref: Ref, error: unknown): undefined {
    const e = error instanceof HeraldError ? error : new HeraldError('unauthorized', 'unauthorized');
    this.#peer.refuse(ref, e);
    this.disconnect(closeInfo(closeCodeForError(e.code) ?? CloseCode.Unauthorized, e.message));
    return undefined;
  }
}

function connectResult(session: Session, pingInterval: number, now: number): ConnectResult {
  const { userId, expiresAt } = session.credentials;
  return {
    clientId: session.id,
    ...(userId === '' ? {} : { userId }),
    pingInterval,
    ...expiresIn(expiresAt, now),
  };
}

/** Whole seconds until `expiresAt`, as connect and refresh answers carry them. */
function expiresIn(expiresAt: number | undefined, now: number): { expiresIn?: number } {
  if (expiresAt === undefined) return {};
  return { expiresIn: Math.max(0, Math.ceil((expiresAt - now) / 1000)) };
}
