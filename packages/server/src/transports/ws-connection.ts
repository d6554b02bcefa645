/**
 * One WebSocket client (PROTOCOL.md section 5) as a codec around its command session: frames in
 * are decoded into commands, answers and pushes out are encoded as JSON text frames. Every
 * decision (authentication, order, limits, permissions, replay) is the session's and the hub's.
 *
 * Publications bypass `ws`'s per-message framing: each goes to the socket as a frame built once
 * per publication (ws-frame.ts), so fan-out costs one write per subscriber. That is safe because
 * compression is off: `ws` then writes every frame synchronously and never queues, so frames
 * cannot interleave. Every frame Herald writes goes through the turn's batch, held until the turn
 * ends (turn-batch.ts): the frames `ws` writes itself are pongs, which may go anywhere between
 * frames, and the close frame, which goes after `releaseHeld`.
 */
import type { Duplex } from 'node:stream';
import {
  CloseCode,
  closeInfo,
  connectResultJson,
  disconnectPushJson,
  errorReplyJson,
  historyResultJson,
  joinLeavePushJson,
  parseCommand,
  pubPushJson,
  resultReplyJson,
  subscribeResultJson,
  subPushJson,
  unsubPushJson,
  type ClientInfo,
  type DisconnectInfo,
  type Position,
  HeraldError,
} from '@herald/protocol';
import type { RawData, WebSocket } from 'ws';
import type { PublicationRecord } from '../broker/broker.js';
import { CommandSession, type Answer, type CommandPeer } from '../core/command-session.js';
import { defineEncoder, type Delivery } from '../core/delivery.js';
import type { HookClient } from '../hooks/types.js';
import { authenticate, type TransportContext } from './context.js';
import { drainedBelow } from './drain.js';
import type { PingRotation } from './ping-rotation.js';
import { flushThreshold, gateWrites, heldBytes, releaseHeld, writeAtTurnEnd, writeBatched } from './turn-batch.js';
import { PING_FRAME, textFrame } from './ws-frame.js';

const pubFrame = defineEncoder((record: PublicationRecord): Buffer => textFrame(pubPushJson(record.json)));
/**
 * The publication with a due ping behind it, built once per publication for every socket whose
 * ping is due (not a copy per socket), so those sockets share one buffer too.
 */
const pubPingFrame = defineEncoder((_record, delivery): Buffer =>
  Buffer.concat([delivery.encoded(pubFrame), PING_FRAME]),
);

/** How long a closing socket may linger for its close handshake before it is destroyed. */
const CLOSE_GRACE_MS = 2_000;
/** How long the hub waits for a client to take what it was sent before it counts as a slow consumer. */
const DRAIN_TIMEOUT_MS = 10_000;

/** Each `ws` socket points to its connection, so that all connections share one set of listeners. */
const CONNECTION = Symbol('herald.wsConnection');

function connectionOf(ws: WebSocket): WsConnection {
  return (ws as unknown as { [CONNECTION]: WsConnection })[CONNECTION];
}

// `ws` closes the socket itself on protocol errors (1002, 1007, 1009); this only keeps them quiet.
function ignoreError(): void {}

export class WsConnection implements CommandPeer<number> {
  readonly kind = 'websocket' as const;
  readonly #ctx: TransportContext;
  readonly #ws: WebSocket;
  readonly #socket: Duplex;
  readonly #commands: CommandSession<number>;
  /** The transport's open connections; this one leaves it when its socket closes. */
  readonly #registry: PingRotation<WsConnection>;
  /** This connection's slot in the transport's ping rotation. */
  pingSlot = -1;
  readonly #connectDeadline: number;
  /** How much a turn's batch may hold for this client (turn-batch.ts). */
  readonly #flushAt: number;
  #closing = false;
  #alive = true;
  /** A ping is due: it leaves with the next publication, or alone at the rotation's next tick. */
  #pingDue = false;

  constructor(
    ctx: TransportContext,
    ws: WebSocket,
    socket: Duplex,
    handshakeToken: string | undefined,
    registry: PingRotation<WsConnection>,
    hookClient: HookClient | undefined,
  ) {
    this.#ctx = ctx;
    this.#ws = ws;
    this.#socket = socket;
    this.#registry = registry;
    this.#connectDeadline = Date.now() + ctx.connectTimeoutMs;
    this.#flushAt = flushThreshold(ctx.hub.limits.maxQueueBytes);
    this.#commands = new CommandSession(ctx.hub, this, {
      // A token in `connect` wins over one from the handshake (`?token=` or Authorization).
      // Without any token, the connect hook (when configured) decides from the upgrade request's cookie.
      authenticate: (token) => authenticate(ctx, token ?? handshakeToken, hookClient),
      commandRate: ctx.commandRate,
      pingIntervalSeconds: ctx.pingIntervalSeconds,
      connectCommand: true,
      ...(ctx.hooks === undefined ? {} : { hooks: ctx.hooks }),
    });
    // Shared listeners, not closures per connection: idle connections are most of what a hub holds.
    (ws as unknown as { [CONNECTION]: WsConnection })[CONNECTION] = this;
    ws.on('message', WsConnection.#onWsMessage);
    ws.on('pong', WsConnection.#onWsPong);
    ws.on('error', ignoreError);
    ws.on('close', WsConnection.#onWsClose);
    gateWrites(socket, ws);
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
    connection.#commands.peerClosed('client closed');
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closing) return;
    this.#alive = true;
    if (isBinary) return this.#commands.violation('binary frames are not part of the protocol');
    const parsed = parseCommand(rawText(data));
    if (parsed.ok) return this.#commands.receive(parsed.command.id, parsed.command.method, parsed.command.params);
    if (parsed.fatal) return this.#commands.violation(parsed.reason);
    this.#commands.reject(parsed.id, new HeraldError(parsed.code, parsed.reason));
  }

  // ---- CommandPeer: answers ---------------------------------------------------------------

  answer(id: number, answer: Answer): boolean {
    this.#send(resultReplyJson(id, resultJson(answer)));
    return answer.method === 'subscribe';
  }

  refuse(id: number, error: HeraldError): void {
    this.#send(errorReplyJson(id, error.code, error.message));
  }

  drained(): Promise<boolean> {
    const socket = this.#socket;
    // What the turn holds leaves now: the wait is for the client to take it.
    releaseHeld(socket);
    return drainedBelow(socket, () => this.bufferedBytes(), this.#ctx.hub.limits.maxQueueBytes, DRAIN_TIMEOUT_MS);
  }

  // ---- SessionTransport ---------------------------------------------------------------------

  bufferedBytes(): number {
    return this.#socket.writableLength + heldBytes(this.#socket);
  }

  /** A publication joins the turn's batch for this socket (see turn-batch.ts), a due ping with it. */
  writePublication(delivery: Delivery): void {
    // `writable` (not `destroyed`): it reads only the socket's writable state, one object fewer to
    // touch per subscriber on the fan-out path, and it also refuses a socket already ending.
    if (this.#closing || !this.#socket.writable) return;
    if (this.#pingDue) {
      this.#pingDue = false;
      writeBatched(this.#socket, delivery.encoded(pubPingFrame), this.#flushAt);
    } else writeBatched(this.#socket, delivery.encoded(pubFrame), this.#flushAt);
  }

  writeJoinLeave(kind: 'join' | 'leave', channel: string, client: ClientInfo): void {
    this.#send(joinLeavePushJson(kind, channel, client));
  }

  writeUnsubscribed(channel: string, code: number, reason: string): void {
    this.#send(unsubPushJson(channel, code, reason));
  }

  writeSubscribed(channel: string, position: Position): void {
    this.#send(subPushJson(channel, position.offset, position.epoch));
  }

  end(info: DisconnectInfo): void {
    if (this.#closing) return;
    // After 1009 and 4004 the socket cannot take more (PROTOCOL.md section 5): no goodbye push.
    if (info.code !== CloseCode.MessageTooBig && info.code !== CloseCode.SlowConsumer) {
      this.#send(disconnectPushJson(info));
    }
    this.#closing = true;
    // The goodbye and what the turn holds go before the close frame, which `ws` writes directly.
    releaseHeld(this.#socket);
    this.#ws.close(info.code, info.reason);
    setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  // ---- lifecycle (the transport's sweeps) -----------------------------------------------

  terminate(): void {
    this.#closing = true;
    this.#ws.terminate();
  }

  /**
   * Whether this connection still waits for its `connect` command; past the deadline it is
   * disconnected (4xxx connect timeout) and waits no more.
   */
  awaitsConnect(now: number): boolean {
    if (this.#commands.session !== undefined || this.#closing) return false;
    if (now <= this.#connectDeadline) return true;
    this.#commands.disconnect(closeInfo(CloseCode.ConnectTimeout));
    return false;
  }

  /**
   * Ends a peer that did not answer the previous ping, then pings again: with the next publication
   * written to it within a tick of the rotation, or alone (`pingIfDue`). A lone ping costs a write
   * of its own, and on loopback the hub's write also does the receiving side's TCP work; riding on
   * a publication it costs two bytes (ping-rotation.ts).
   */
  heartbeat(): void {
    if (this.#closing) return;
    if (!this.#alive) {
      this.terminate();
      return;
    }
    this.#alive = false;
    this.#pingDue = true;
  }

  /** A ping that found no publication to ride on within its tick leaves alone. */
  pingIfDue(): void {
    if (!this.#pingDue || this.#closing || !this.#socket.writable) return;
    this.#pingDue = false;
    writeBatched(this.#socket, PING_FRAME, this.#flushAt);
  }

  /** Answers and control pushes join the turn's batch; all frames share it, so they keep their order. */
  #send(json: string): void {
    if (this.#closing || !this.#socket.writable) return;
    writeAtTurnEnd(this.#socket, textFrame(json), this.#flushAt);
  }
}

/** A command's result object as JSON text (PROTOCOL.md section 5). */
function resultJson(answer: Answer): string {
  switch (answer.method) {
    case 'connect':
      return connectResultJson(answer.result);
    case 'subscribe': {
      const { position, recovered, publications } = answer.outcome;
      return subscribeResultJson(
        position,
        recovered,
        publications.map((r) => r.json),
      );
    }
    case 'history': {
      const { publications, top, recovered } = answer.history;
      return historyResultJson(
        publications.map((r) => r.json),
        top,
        recovered,
      );
    }
    case 'unsubscribe':
    case 'ping':
      return '{}';
    case 'publish':
    case 'presence':
    case 'refresh':
    case 'rpc':
      return JSON.stringify(answer.result);
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
