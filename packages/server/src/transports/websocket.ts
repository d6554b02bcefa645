/**
 * WebSocket (PROTOCOL.md section 5): JSON commands in, replies and pushes out. `ws` owns the
 * handshake, parsing, pings and close frames; publications bypass its per-message framing and go
 * to the socket as frames built once per publication (see ws-frame.ts), so fan-out costs one
 * write per subscriber. That is safe because compression is off: `ws` then writes every frame
 * synchronously and never queues, so frames cannot interleave.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  CloseCode,
  HeraldError,
  errorReplyJson,
  parseCommand,
  pubPushJson,
  type ClientInfo,
  type Command,
  type DisconnectInfo,
} from '@herald/protocol';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { PublicationRecord } from '../broker/broker.js';
import { defineEncoder, type Delivery } from '../core/delivery.js';
import type { Credentials } from '../core/credentials.js';
import type { SubscribeOutcome } from '../core/hub.js';
import type { Session, SessionTransport } from '../core/session.js';
import { bearerToken } from '../http/credentials.js';
import { refuseUpgrade } from '../http/respond.js';
import { authenticate, authenticateAnonymous, checkOrigin, disconnectJson, type TransportContext } from './context.js';
import { historyJson, historyParams, subscribeParams } from './answers.js';
import { writeAtTickEnd, writeBatched } from './tick-batch.js';
import { drained } from './drain.js';
import { textFrame } from './ws-frame.js';

const pubFrame = defineEncoder((record: PublicationRecord): Buffer => textFrame(pubPushJson(record.json)));

/** How long a closing socket may linger for its close handshake before it is destroyed. */
const CLOSE_GRACE_MS = 2_000;
/** Commands waiting behind a slow one before the client counts as flooding. */
const MAX_QUEUED_COMMANDS = 64;
/** Fragments one incoming message may arrive in. */
const MAX_FRAGMENTS = 1024;
/** Socket chunks `ws` may hold for an incomplete frame (a 80 KiB frame needs about 60 at MTU size). */
const MAX_BUFFERED_CHUNKS = 4096;
/** How long a command waits for the client to take earlier answers before it counts as a slow consumer. */
const ANSWER_DRAIN_MS = 10_000;

/** A command's result object as JSON text (undefined: answered already, or none); a promise when it waits. */
type CommandOutcome = string | undefined | Promise<string | undefined>;

export class WebSocketTransport {
  readonly #ctx: TransportContext;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<WsConnection>();
  readonly #sweeper: NodeJS.Timeout;
  #lastPing = Date.now();

  constructor(ctx: TransportContext, maxFrameBytes: number) {
    this.#ctx = ctx;
    // Limits set explicitly rather than inherited: message size (1009 past it), no compression
    // (so no decompression bombs), and how a message may arrive. Browsers send each message as
    // one frame; every fragment or socket chunk `ws` holds costs a Buffer object, so 1-byte
    // fragments or 1-byte TCP segments could otherwise pin megabytes per connection (1008 past these).
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxFrameBytes,
      maxFragments: MAX_FRAGMENTS,
      maxBufferedChunks: MAX_BUFFERED_CHUNKS,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: false,
    });
    this.#sweeper = setInterval(() => this.#sweep(), 1_000).unref();
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    try {
      checkOrigin(this.#ctx, req);
      if (!this.#ctx.hub.ready) throw new HeraldError('not_ready', 'the hub is not accepting connections');
    } catch (error) {
      const e = error instanceof HeraldError ? error : new HeraldError('internal', 'internal error');
      refuseUpgrade(socket, e.code, e.message);
      return;
    }
    // `searchParams` is built on first use: a URL without a query never needs it.
    const token = bearerToken(req) ?? (url.search === '' ? undefined : (url.searchParams.get('token') ?? undefined));
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#connections.add(new WsConnection(this.#ctx, ws, socket, token, this.#connections));
    });
  }

  /** Open WebSocket connections (drain waits for them to finish their close handshakes). */
  get size(): number {
    return this.#connections.size;
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const connection of this.#connections) connection.terminate();
  }

  /** Connect deadlines every second; pings (and dead-peer checks) every ping interval. */
  #sweep(): void {
    const now = Date.now();
    const ping = now - this.#lastPing >= this.#ctx.pingIntervalSeconds * 1000;
    if (ping) this.#lastPing = now;
    for (const connection of this.#connections) {
      connection.checkConnectDeadline(now);
      if (ping) connection.heartbeat();
    }
  }
}

/** Each `ws` socket points to its connection, so that all connections share one set of listeners. */
const CONNECTION = Symbol('herald.wsConnection');

function connectionOf(ws: WebSocket): WsConnection {
  return (ws as unknown as { [CONNECTION]: WsConnection })[CONNECTION];
}

// `ws` closes the socket itself on protocol errors (1002, 1007, 1009); this only keeps them quiet.
function ignoreError(): void {}

class WsConnection implements SessionTransport {
  readonly kind = 'websocket' as const;
  readonly #ctx: TransportContext;
  readonly #ws: WebSocket;
  readonly #socket: Duplex;
  /** The transport's open connections; this one leaves it when its socket closes. */
  readonly #registry: Set<WsConnection>;
  readonly #initialToken: string | undefined;
  readonly #connectDeadline: number;
  #session: Session | undefined;
  /** A connect command has arrived: commands may follow it at once, queued behind its answer. */
  #connectReceived = false;
  #connecting = false;
  #closing = false;
  #alive = true;
  /** The tail of the command queue; undefined while no command is queued. */
  #queue: Promise<void> | undefined;
  #queued = 0;
  #tokens: number;
  #refilledAt = Date.now();

  constructor(
    ctx: TransportContext,
    ws: WebSocket,
    socket: Duplex,
    token: string | undefined,
    registry: Set<WsConnection>,
  ) {
    this.#ctx = ctx;
    this.#ws = ws;
    this.#socket = socket;
    this.#registry = registry;
    this.#initialToken = token;
    this.#connectDeadline = Date.now() + ctx.connectTimeoutMs;
    this.#tokens = ctx.commandRate.burst;
    // Shared listeners, not closures per connection: idle connections are most of what a hub holds.
    (ws as unknown as { [CONNECTION]: WsConnection })[CONNECTION] = this;
    ws.on('message', WsConnection.#onWsMessage);
    ws.on('pong', WsConnection.#onWsPong);
    ws.on('error', ignoreError);
    ws.on('close', WsConnection.#onWsClose);
  }

  static #onWsMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
    connectionOf(this).#onMessage(data, isBinary);
  }

  static #onWsPong(this: WebSocket): void {
    connectionOf(this).#alive = true;
  }

  static #onWsClose(this: WebSocket): void {
    const connection = connectionOf(this);
    connection.#closing = true;
    connection.#registry.delete(connection);
    if (connection.#session !== undefined) {
      connection.#ctx.hub.endSession(connection.#session, {
        code: CloseCode.Normal,
        reason: 'client closed',
        reconnect: false,
      });
    }
  }

  // ---- SessionTransport -------------------------------------------------------------------

  bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  writePublication(delivery: Delivery): void {
    this.#write(delivery.encoded(pubFrame));
  }

  writeJoinLeave(kind: 'join' | 'leave', channel: string, client: ClientInfo): void {
    this.#send(JSON.stringify({ push: kind, channel, client }));
  }

  writeUnsubscribed(channel: string, code: number, reason: string): void {
    this.#send(JSON.stringify({ push: 'unsub', channel, code, reason }));
  }

  end(info: DisconnectInfo): void {
    if (this.#closing) return;
    // After 1009 and 4004 the socket cannot take more (PROTOCOL.md section 5): no goodbye push.
    if (info.code !== CloseCode.MessageTooBig && info.code !== CloseCode.SlowConsumer) {
      this.#send(`{"push":"disconnect",${disconnectJson(info).slice(1)}`);
    }
    this.#closing = true;
    this.#ws.close(info.code, info.reason);
    setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  // ---- lifecycle --------------------------------------------------------------------------

  terminate(): void {
    this.#closing = true;
    this.#ws.terminate();
  }

  checkConnectDeadline(now: number): void {
    if (this.#session === undefined && !this.#closing && now > this.#connectDeadline) {
      this.#disconnect({ code: CloseCode.ConnectTimeout, reason: 'no connect command in time', reconnect: true });
    }
  }

  /** Ends a peer that did not answer the previous ping, then pings again. */
  heartbeat(): void {
    if (this.#closing) return;
    if (!this.#alive) {
      this.terminate();
      return;
    }
    this.#alive = false;
    this.#ws.ping();
  }

  /** Ends the connection whether or not it has a session yet. */
  #disconnect(info: DisconnectInfo): void {
    if (this.#session !== undefined) this.#ctx.hub.endSession(this.#session, info);
    else this.end(info);
  }

  /** A publication leaves at once when it is the socket's first frame of the tick (see tick-batch.ts). */
  #write(frame: Buffer): void {
    if (this.#closing || this.#socket.destroyed) return;
    writeBatched(this.#socket, frame);
  }

  /** Answers and control pushes join the tick's batch; all frames share it, so they keep their order. */
  #send(json: string): void {
    if (this.#closing || this.#socket.destroyed) return;
    writeAtTickEnd(this.#socket, textFrame(json));
  }

  // ---- commands ---------------------------------------------------------------------------

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closing) return;
    this.#alive = true;
    if (!this.#takeToken()) {
      this.#ctx.hub.stats.rateLimited++;
      this.#disconnect({ code: CloseCode.RateLimited, reason: 'too many commands', reconnect: true });
      return;
    }
    if (isBinary) {
      this.#disconnect({
        code: CloseCode.ProtocolViolation,
        reason: 'binary frames are not part of the protocol',
        reconnect: false,
      });
      return;
    }
    const parsed = parseCommand(rawText(data));
    if (!parsed.ok) {
      if (parsed.fatal)
        this.#disconnect({ code: CloseCode.ProtocolViolation, reason: parsed.reason, reconnect: false });
      else this.#send(errorReplyJson(parsed.id, parsed.code, parsed.reason));
      return;
    }
    const command = parsed.command;
    if (command.method === 'connect') this.#connectReceived = true;
    else if (!this.#connectReceived) {
      this.#disconnect({
        code: CloseCode.ProtocolViolation,
        reason: 'the first command must be connect',
        reconnect: false,
      });
      return;
    }
    if (++this.#queued > MAX_QUEUED_COMMANDS) {
      this.#ctx.hub.stats.rateLimited++;
      this.#disconnect({ code: CloseCode.RateLimited, reason: 'too many commands in flight', reconnect: true });
      return;
    }
    // One command at a time per connection: answers may depend on earlier commands (connect first).
    // With nothing in flight the command runs now; only a command that has to wait (a token
    // check, a broker round trip, a client that does not read) leaves a promise to queue behind.
    if (this.#queue === undefined) this.#queue = this.#run(command);
    else this.#queue = this.#queue.then(() => this.#run(command));
  }

  #takeToken(): boolean {
    const { perSecond, burst } = this.#ctx.commandRate;
    const now = Date.now();
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilledAt) / 1000) * perSecond);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /**
   * Runs one command and answers it. Returns a promise only when the command has to wait: on the
   * embedded broker an anonymous `connect` and a `subscribe` complete here, without a promise
   * (and a microtask hop) per step, which is most of what a new connection costs beyond the upgrade.
   */
  #run(command: Command): Promise<void> | undefined {
    let outcome: CommandOutcome;
    try {
      outcome = this.#start(command);
    } catch (error) {
      this.#failed(command, error);
      return undefined;
    }
    if (!(outcome instanceof Promise)) {
      this.#answered(command, outcome);
      return undefined;
    }
    return outcome.then(
      (result) => this.#answered(command, result),
      (error: unknown) => this.#failed(command, error),
    );
  }

  #start(command: Command): CommandOutcome {
    if (this.#closing) return undefined;
    // The next answer waits until the client has taken the previous ones: one that asks but does
    // not read (history after history) would otherwise grow the hub's memory by a whole answer
    // each time (guarantee 4). At most one unread answer is held; a client that takes nothing for
    // ANSWER_DRAIN_MS is a slow consumer.
    if (this.#socket.writableLength > this.#ctx.hub.limits.maxQueueBytes) return this.#afterDrain(command);
    return this.#execute(command);
  }

  async #afterDrain(command: Command): Promise<string | undefined> {
    const taken = await drained(this.#socket, ANSWER_DRAIN_MS);
    if (this.#closing) return undefined;
    if (!taken) {
      this.#ctx.hub.stats.slowConsumerDisconnects++;
      this.#disconnect({ code: CloseCode.SlowConsumer, reason: 'slow consumer', reconnect: true });
      return undefined;
    }
    return this.#execute(command);
  }

  #answered(command: Command, result: string | undefined): void {
    try {
      if (result !== undefined && !this.#closing) this.#send(`{"id":${command.id},"result":${result}}`);
    } finally {
      this.#commandDone();
    }
  }

  #failed(command: Command, error: unknown): void {
    try {
      if (this.#closing) return;
      if (error instanceof HeraldError) this.#send(errorReplyJson(command.id, error.code, error.message));
      else {
        this.#ctx.logger.error({ err: error, method: command.method }, 'command failed');
        this.#send(errorReplyJson(command.id, 'internal', 'internal error'));
      }
    } finally {
      this.#commandDone();
    }
  }

  /** Idle again: drop the settled chain rather than keep a promise per idle connection. */
  #commandDone(): void {
    if (--this.#queued === 0) this.#queue = undefined;
  }

  /** The result object as JSON text, or undefined when the answer was already sent; a promise when it has to wait. */
  #execute(command: Command): CommandOutcome {
    if (command.method === 'connect') return this.#connect(command);
    const session = this.#session;
    if (session === undefined) {
      // Pipelined behind a connect that was answered with an error: the client is not connected.
      this.#disconnect({ code: CloseCode.ProtocolViolation, reason: 'not connected', reconnect: false });
      return undefined;
    }
    const { params } = command;
    const hub = this.#ctx.hub;
    switch (command.method) {
      case 'subscribe': {
        const outcome = hub.subscribe(session, params.channel, subscribeParams(params));
        if (outcome instanceof Promise) return outcome.then((o) => this.#subscribed(command, o));
        return this.#subscribed(command, outcome);
      }
      case 'unsubscribe':
        hub.unsubscribe(session, params.channel);
        return '{}';
      case 'ping':
        return '{}';
      default:
        return this.#executeLater(command, session);
    }
  }

  /** Sends the subscribe answer itself, so that the held publications follow it. */
  #subscribed(command: Command, outcome: SubscribeOutcome): undefined {
    if (this.#closing) return undefined;
    let result = `{"offset":${outcome.position.offset},"epoch":${JSON.stringify(outcome.position.epoch)}`;
    if (outcome.recovered !== undefined) {
      result += `,"recovered":${outcome.recovered},"publications":[${outcome.publications.map((r) => r.json).join(',')}]`;
    }
    // The answer first, then what was held: live pushes start right after the answer.
    this.#send(`{"id":${command.id},"result":${result}}}`);
    this.#ctx.hub.activate(outcome.subscription);
    return undefined;
  }

  /** The commands that always wait for the broker or a token check. */
  async #executeLater(command: Command, session: Session): Promise<string | undefined> {
    const { params } = command;
    const hub = this.#ctx.hub;
    switch (command.method) {
      case 'publish': {
        const answer = await hub.publish(params, session.credentials);
        return JSON.stringify(answer);
      }
      case 'presence': {
        this.#requireReadable(session, params.channel);
        return JSON.stringify({ clients: await hub.presence(params.channel) });
      }
      case 'history': {
        this.#requireReadable(session, params.channel);
        const history = await hub.history(params.channel, historyParams(params));
        return historyJson(history.publications, history.top, history.recovered);
      }
      case 'refresh': {
        if (typeof params.token !== 'string') throw new HeraldError('bad_request', 'token is required');
        const credentials = await authenticate(this.#ctx, params.token);
        hub.refresh(session, credentials);
        return JSON.stringify(expiresIn(credentials.expiresAt));
      }
      default:
        throw new HeraldError('bad_request', `${command.method} is not a command here`);
    }
  }

  #connect(command: Command): CommandOutcome {
    if (this.#session !== undefined || this.#connecting) throw new HeraldError('bad_request', 'already connected');
    const param = command.params.token;
    if (param !== undefined && typeof param !== 'string')
      throw new HeraldError('bad_request', 'token must be a string');
    const token = param ?? this.#initialToken;
    if (token !== undefined) return this.#connectWithToken(token);
    // No token, no signature to check: an anonymous session opens at once.
    let credentials: Credentials;
    try {
      credentials = authenticateAnonymous(this.#ctx);
    } catch (error) {
      return this.#refuse(error);
    }
    return this.#openSession(credentials);
  }

  async #connectWithToken(token: string): Promise<string | undefined> {
    this.#connecting = true;
    let credentials;
    try {
      credentials = await authenticate(this.#ctx, token);
    } catch (error) {
      return this.#refuse(error);
    } finally {
      this.#connecting = false;
    }
    if (this.#closing) return undefined;
    return this.#openSession(credentials);
  }

  #refuse(error: unknown): undefined {
    const reason = error instanceof HeraldError ? error.message : 'unauthorized';
    this.end({ code: CloseCode.Unauthorized, reason, reconnect: false });
    return undefined;
  }

  /** Returns the connect answer, or undefined when the connection was ended instead. */
  #openSession(credentials: Credentials): string | undefined {
    if (!this.#ctx.hub.ready) {
      this.end({ code: CloseCode.GoingAway, reason: 'hub is not accepting connections', reconnect: true });
      return undefined;
    }
    let session: Session;
    try {
      session = this.#ctx.hub.openSession(this, credentials);
    } catch (error) {
      // The per-user connection cap: reconnect later, with backoff (4005).
      if (!(error instanceof HeraldError) || error.code !== 'rate_limited') throw error;
      this.end({ code: CloseCode.RateLimited, reason: error.message, reconnect: true });
      return undefined;
    }
    this.#session = session;
    // Written out rather than stringified from an object: same fields, same order, no spreads.
    let answer = `{"clientId":${JSON.stringify(session.id)}`;
    if (credentials.userId !== '') answer += `,"userId":${JSON.stringify(credentials.userId)}`;
    answer += `,"pingInterval":${this.#ctx.pingIntervalSeconds}`;
    const expires = expiresIn(credentials.expiresAt).expiresIn;
    if (expires !== undefined) answer += `,"expiresIn":${expires}`;
    return `${answer}}`;
  }

  #requireReadable(session: Session, channel: unknown): void {
    if (typeof channel === 'string' && !session.credentials.canSubscribe(channel)) {
      throw new HeraldError('forbidden', `not permitted to read ${channel}`);
    }
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

function expiresIn(expiresAt: number | undefined): { expiresIn?: number } {
  if (expiresAt === undefined) return {};
  return { expiresIn: Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000)) };
}
