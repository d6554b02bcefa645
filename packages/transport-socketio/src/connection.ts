/**
 * One Socket.IO client as a hub session: a dumb pipe between Socket.IO events and the core.
 * Commands arrive as events with acks and run one at a time (answers may depend on earlier
 * commands); publications leave as packets built once per publication (packet.ts); every decision
 * (permissions, recovery, the queue bound) is the session's and the hub's.
 */
import {
  CloseCode,
  HeraldError,
  type ClientInfo,
  type DisconnectInfo,
  type ErrorCode,
  type Publication,
} from '@herald/protocol';
import {
  authenticate,
  historyParams,
  subscribeParams,
  type Delivery,
  type PublicationRecord,
  type Session,
  type SessionTransport,
  type TransportContext,
} from '@herald/server';
import type { Socket } from 'socket.io';
import { holdsBinary } from './binary.js';
import {
  COMMANDS,
  HERALD_EVENTS,
  type Ack,
  type CommandName,
  type ConnectedEvent,
  type ErrorEvent,
  type HistoryResult,
  type SubscribeResult,
} from './events.js';
import { encodePublication, socketIoPublication } from './packet.js';
import type { Wire } from './wire.js';

const COMMAND_SET: ReadonlySet<string> = new Set(COMMANDS);
/** Commands waiting behind a slow one before the client counts as flooding. */
const MAX_QUEUED_COMMANDS = 64;
/** How long a connection told to go may take to flush its goodbye before its socket is cut. */
const END_GRACE_MS = 2_000;

type AckFn = (answer: Ack<object>) => void;
type Params = Readonly<Record<string, unknown>>;

export class SocketIoConnection implements SessionTransport {
  readonly kind = 'socketio' as const;
  readonly #ctx: TransportContext;
  readonly #socket: Socket;
  readonly #wire: Wire;
  #session: Session | undefined;
  #ended = false;
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #tokens: number;
  #refilledAt = Date.now();

  constructor(ctx: TransportContext, socket: Socket, wire: Wire) {
    this.#ctx = ctx;
    this.#socket = socket;
    this.#wire = wire;
    this.#tokens = ctx.commandRate.burst;
  }

  /** Opens the hub session and starts taking commands. */
  start(session: Session): void {
    this.#session = session;
    const socket = this.#socket;
    socket.onAny((event: unknown, ...args: unknown[]) => this.#onEvent(event, args));
    // Without a listener, an `error` event from a client would be thrown by the EventEmitter.
    socket.on('error', () => undefined);
    socket.on('disconnect', (reason) => {
      this.#ended = true;
      if (!session.closed) {
        this.#ctx.hub.endSession(session, {
          code: CloseCode.Normal,
          reason: `client gone: ${reason}`,
          reconnect: false,
        });
      }
    });
    const { userId, expiresAt } = session.credentials;
    const connected: ConnectedEvent = {
      clientId: session.id,
      ...(userId === '' ? {} : { userId }),
      ...expiresIn(expiresAt),
    };
    socket.emit(HERALD_EVENTS.connected, connected);
  }

  // ---- SessionTransport -------------------------------------------------------------------

  bufferedBytes(): number {
    return this.#wire.bufferedBytes();
  }

  writePublication(delivery: Delivery): void {
    this.#wire.writePacket(delivery.encoded(socketIoPublication));
  }

  writeJoinLeave(kind: 'join' | 'leave', channel: string, client: ClientInfo): void {
    if (!this.#ended) this.#socket.emit(HERALD_EVENTS[kind], { channel, client });
  }

  writeUnsubscribed(channel: string, code: number, reason: string): void {
    if (!this.#ended) this.#socket.emit(HERALD_EVENTS.unsubscribed, { channel, code, reason });
  }

  /**
   * Tells the client why, then closes in the way that makes a Socket.IO client do the right thing:
   * codes that say "reconnect" only close the transport (the client reconnects by itself); the
   * others first disconnect at the Socket.IO level ("io server disconnect": no reconnect).
   * A slow consumer gets no goodbye: its buffers are dropped and its socket is cut at once.
   */
  end(info: DisconnectInfo): void {
    if (this.#ended) return;
    this.#ended = true;
    const socket = this.#socket;
    if (!socket.connected) return;
    if (info.code === CloseCode.SlowConsumer || info.code === CloseCode.MessageTooBig) {
      this.#wire.destroy();
      return;
    }
    socket.emit(HERALD_EVENTS.disconnect, { code: info.code, reason: info.reason, reconnect: info.reconnect });
    // A Socket.IO DISCONNECT packet is what stops a Socket.IO client from reconnecting.
    if (!info.reconnect) socket.disconnect(false);
    // A client that stopped reading never drains the goodbye: its buffers go after a grace period.
    this.#wire.closeAfterFlush(END_GRACE_MS);
  }

  // ---- commands ---------------------------------------------------------------------------

  /** Ends the session (which calls `end`). */
  #disconnect(info: DisconnectInfo): void {
    const session = this.#session;
    if (session !== undefined && !session.closed) this.#ctx.hub.endSession(session, info);
    else this.end(info);
  }

  #onEvent(event: unknown, args: unknown[]): void {
    if (this.#ended) return;
    const last = args.at(-1);
    const ack = typeof last === 'function' ? (args.pop() as AckFn) : undefined;
    const name = typeof event === 'string' ? event : String(event);
    if (!this.#takeToken()) {
      this.#ctx.hub.stats.rateLimited++;
      this.#disconnect({ code: CloseCode.RateLimited, reason: 'too many commands', reconnect: true });
      return;
    }
    if (!COMMAND_SET.has(name)) {
      this.#answerError(name, ack, 'bad_request', `unknown command ${JSON.stringify(name.slice(0, 64))}`);
      return;
    }
    if (++this.#queued > MAX_QUEUED_COMMANDS) {
      this.#ctx.hub.stats.rateLimited++;
      this.#disconnect({ code: CloseCode.RateLimited, reason: 'too many commands in flight', reconnect: true });
      return;
    }
    const params = args[0];
    this.#queue = this.#queue.then(() => this.#run(name as CommandName, params, ack));
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

  async #run(command: CommandName, params: unknown, ack: AckFn | undefined): Promise<void> {
    try {
      if (this.#ended) return;
      // A client that does not read its answers cannot make the hub hold them without bound.
      if (this.bufferedBytes() > this.#ctx.hub.limits.maxQueueBytes) {
        this.#ctx.hub.stats.slowConsumerDisconnects++;
        this.#disconnect({ code: CloseCode.SlowConsumer, reason: 'slow consumer', reconnect: true });
        return;
      }
      if (typeof params !== 'object' || params === null || Array.isArray(params)) {
        throw new HeraldError('bad_request', `${command} takes one object of parameters`);
      }
      const result = await this.#execute(command, params as Params, ack);
      if (result !== undefined && !this.#ended) ack?.({ ok: true, ...result });
    } catch (error) {
      if (this.#ended) return;
      if (error instanceof HeraldError) this.#answerError(command, ack, error.code, error.message);
      else {
        this.#ctx.logger.error({ err: error, command }, 'socket.io command failed');
        this.#answerError(command, ack, 'internal', 'internal error');
      }
    } finally {
      this.#queued--;
    }
  }

  #answerError(event: string, ack: AckFn | undefined, code: ErrorCode, message: string): void {
    if (ack !== undefined) ack({ ok: false, error: { code, message } });
    else this.#socket.emit(HERALD_EVENTS.error, { event, code, message } satisfies ErrorEvent);
  }

  /** Returns the result to ack, or undefined when the answer was already sent. */
  async #execute(command: CommandName, params: Params, ack: AckFn | undefined): Promise<object | undefined> {
    const hub = this.#ctx.hub;
    const session = this.#session as Session;
    switch (command) {
      case 'subscribe': {
        const outcome = await hub.subscribe(session, params.channel, subscribeParams(params));
        if (this.#ended) return undefined;
        const { subscription, position, recovered, publications } = outcome;
        const result: SubscribeResult = {
          channel: subscription.channel,
          offset: position.offset,
          epoch: position.epoch,
          ...(recovered === undefined ? {} : { recovered }),
        };
        // The ack, then the missed publications as ordinary events, then what was held live:
        // the client's listeners see every publication once, in offset order.
        ack?.({ ok: true, ...result });
        for (const record of publications) this.#wire.writePacket(encodePublication(record));
        hub.activate(subscription);
        return undefined;
      }
      case 'unsubscribe':
        hub.unsubscribe(session, params.channel);
        return {};
      case 'publish':
        if (holdsBinary(params.data)) {
          throw new HeraldError(
            'bad_request',
            'binary data is not supported: publication data is JSON (send base64 text)',
          );
        }
        // The whole object: the hub checks every field, including registered publish extensions.
        return hub.publish(params, session.credentials);
      case 'presence':
        this.#requireReadable(session, params.channel);
        return { clients: await hub.presence(params.channel) };
      case 'history': {
        this.#requireReadable(session, params.channel);
        const history = await hub.history(params.channel, historyParams(params));
        const result: HistoryResult = {
          publications: history.publications.map(toPublication),
          offset: history.top.offset,
          epoch: history.top.epoch,
          ...(history.recovered === undefined ? {} : { recovered: history.recovered }),
        };
        return result;
      }
      case 'refresh': {
        if (typeof params.token !== 'string') throw new HeraldError('bad_request', 'token is required');
        const credentials = await authenticate(this.#ctx, params.token);
        hub.refresh(session, credentials);
        return expiresIn(credentials.expiresAt);
      }
    }
  }

  #requireReadable(session: Session, channel: unknown): void {
    if (typeof channel === 'string' && !session.credentials.canSubscribe(channel)) {
      throw new HeraldError('forbidden', `not permitted to read ${channel}`);
    }
  }
}

function toPublication(record: PublicationRecord): Publication {
  return JSON.parse(record.json) as Publication;
}

function expiresIn(expiresAt: number | undefined): { expiresIn?: number } {
  if (expiresAt === undefined) return {};
  return { expiresIn: Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000)) };
}
