/**
 * One Socket.IO client as a codec around its hub command session: events with acks in, acks and
 * events out (docs/socketio.md). Publications leave as packets built once per publication
 * (packet.ts). Order, limits, permissions, replay and the queue bound are the session's and the
 * hub's (CommandSession in @herald/server).
 */
import {
  CloseCode,
  HeraldError,
  type ClientInfo,
  type DisconnectInfo,
  type Position,
  type Publication,
} from '@herald/protocol';
import {
  CommandSession,
  authenticate,
  type Answer,
  type CommandPeer,
  type Credentials,
  type Delivery,
  type HookClient,
  type Params,
  type TransportContext,
} from '@herald/server';
import type { Socket } from 'socket.io';
import { holdsBinary } from './binary.js';
import {
  COMMANDS,
  HERALD_EVENTS,
  type Ack,
  type ConnectedEvent,
  type ErrorEvent,
  type HistoryResult,
  type SubscribeResult,
} from './events.js';
import { socketIoPublication } from './packet.js';
import type { Wire } from './wire.js';

const COMMAND_SET: ReadonlySet<string> = new Set(COMMANDS);
/** How long a connection told to go may take to flush its goodbye before its socket is cut. */
const END_GRACE_MS = 2_000;
/** How long the hub waits for a client to take what it was sent before it counts as a slow consumer. */
const DRAIN_TIMEOUT_MS = 10_000;

type AckFn = (answer: Ack<object>) => void;

/** A command as the session tracks it: the event it came as, and its ack when the client asked for one. */
interface EventRef {
  readonly event: string;
  readonly ack: AckFn | undefined;
}

export class SocketIoConnection implements CommandPeer<EventRef> {
  readonly kind = 'socketio' as const;
  readonly #commands: CommandSession<EventRef>;
  readonly #socket: Socket;
  /** What the connection holds unsent, for the queue bound (wire.ts). */
  readonly #wire: Wire;
  readonly #ctx: TransportContext;
  #ended = false;

  constructor(ctx: TransportContext, socket: Socket, wire: Wire, hookClient?: HookClient) {
    this.#ctx = ctx;
    this.#socket = socket;
    this.#wire = wire;
    this.#commands = new CommandSession(ctx.hub, this, {
      // Socket.IO authenticates at its handshake (attach.ts); this checks the tokens of `refresh`.
      authenticate: (token) => authenticate(ctx, token, hookClient),
      commandRate: ctx.commandRate,
      pingIntervalSeconds: ctx.pingIntervalSeconds,
      connectCommand: false,
      ...(ctx.hooks === undefined ? {} : { hooks: ctx.hooks }),
    });
  }

  /** Opens the hub session for credentials checked at the handshake, then takes commands. Throws as `CommandSession.open`. */
  start(credentials: Credentials): void {
    const { clientId, userId, expiresIn } = this.#commands.open(credentials);
    const socket = this.#socket;
    socket.onAny((event: unknown, ...args: unknown[]) => this.#onEvent(event, args));
    // Without a listener, an `error` event from a client would be thrown by the EventEmitter.
    socket.on('error', () => undefined);
    socket.on('disconnect', (reason) => {
      this.#ended = true;
      this.#commands.peerClosed(`client gone: ${reason}`);
    });
    const connected: ConnectedEvent = {
      clientId,
      ...(userId === undefined ? {} : { userId }),
      ...(expiresIn === undefined ? {} : { expiresIn }),
    };
    socket.emit(HERALD_EVENTS.connected, connected);
    this.#commands.subscribeClaimed();
  }

  #onEvent(event: unknown, args: unknown[]): void {
    const last = args.at(-1);
    const ref: EventRef = {
      event: typeof event === 'string' ? event : String(event),
      ack: typeof last === 'function' ? (args.pop() as AckFn) : undefined,
    };
    const params = args[0];
    if (!COMMAND_SET.has(ref.event)) {
      return this.#commands.reject(
        ref,
        new HeraldError('bad_request', `unknown command ${JSON.stringify(ref.event.slice(0, 64))}`),
      );
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      return this.#commands.reject(ref, new HeraldError('bad_request', `${ref.event} takes one object of parameters`));
    }
    if (ref.event === 'publish' && holdsBinary((params as Params).data)) {
      return this.#commands.reject(
        ref,
        new HeraldError('bad_request', 'binary data is not supported: publication data is JSON (send base64 text)'),
      );
    }
    this.#commands.receive(ref, ref.event, params as Params);
  }

  // ---- CommandPeer: answers ---------------------------------------------------------------

  /** Subscribe answers carry no publications: the missed ones follow the ack as ordinary events. */
  answer(ref: EventRef, answer: Answer): boolean {
    ref.ack?.({ ok: true, ...resultObject(answer) });
    return false;
  }

  refuse(ref: EventRef, error: HeraldError): void {
    if (ref.ack !== undefined) ref.ack({ ok: false, error: error.toWire() });
    else {
      this.#socket.emit(HERALD_EVENTS.error, {
        event: ref.event,
        code: error.code,
        message: error.message,
      } satisfies ErrorEvent);
    }
  }

  drained(): Promise<boolean> {
    return this.#wire.drained(this.#ctx.hub.limits.maxQueueBytes, DRAIN_TIMEOUT_MS);
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

  writeSubscribed(channel: string, position: Position): void {
    if (!this.#ended) this.#socket.emit(HERALD_EVENTS.subscribed, { channel, ...position });
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
}

/** The ack fields of an answer (docs/socketio.md). */
function resultObject(answer: Answer): object {
  switch (answer.method) {
    case 'subscribe': {
      const { subscription, position, recovered } = answer.outcome;
      const result: SubscribeResult = {
        channel: subscription.channel,
        offset: position.offset,
        epoch: position.epoch,
        ...(recovered === undefined ? {} : { recovered }),
      };
      return result;
    }
    case 'history': {
      const { publications, top, recovered } = answer.history;
      const result: HistoryResult = {
        publications: publications.map((record) => JSON.parse(record.json) as Publication),
        offset: top.offset,
        epoch: top.epoch,
        ...(recovered === undefined ? {} : { recovered }),
      };
      return result;
    }
    case 'unsubscribe':
    case 'ping':
      return {};
    case 'connect':
    case 'publish':
    case 'presence':
    case 'refresh':
    case 'rpc':
      return answer.result;
  }
}
