/**
 * One Pusher client as a codec around its hub command session, whatever carries it (a WebSocket
 * at `/app/{key}`, or pusher-js's HTTP fallbacks): Pusher messages in are decoded into commands
 * (commands.ts), answers, presence changes and publications out are encoded as Pusher messages
 * (messages.ts). Order, the command rate, backpressure, permissions and the queue bound are the
 * session's and the hub's.
 */
import { randomInt } from 'node:crypto';
import { CloseCode, HeraldError, closeInfo, type ClientInfo, type DisconnectInfo } from '@herald/protocol';
import {
  CommandSession,
  TokenBucket,
  type Answer,
  type CommandPeer,
  type Credentials,
  type Delivery,
  type Hub,
  type Params,
  type TransportContext,
} from '@herald/server';
import type { PusherApp } from './apps.js';
import { appPrefix, heraldChannel, pusherChannel } from './channels.js';
import type { PresenceWatch, Reconciler } from './presence-watch.js';
import { CLIENT_EVENT, PUSHER_COMMANDS, type PusherRef } from './commands.js';
import {
  PusherCode,
  errorMessage,
  message,
  pusherCloseCode,
  pusherPublication,
  type PusherPublication,
} from './messages.js';

/** What carries a connection's messages: a WebSocket, or an HTTP fallback session. */
export interface PusherPipe {
  /** Writes one message (JSON text). */
  send(json: string): void;
  /** Writes a publication (shared by every subscriber of this node). */
  sendPublication(publication: PusherPublication): void;
  bufferedBytes(): number;
  /** Resolves true once at most `bound` bytes are unread, false when the client takes nothing in time. */
  drained(bound: number): Promise<boolean>;
  /** Closes with a Pusher close code; called once. */
  close(code: number, reason: string): void;
}

/** What the Pusher side of the hub wants to hear about beyond the hub's own hooks (webhooks.ts). */
export interface PusherHooks {
  /** A cache channel was subscribed to while it held no event. */
  cacheMiss?(app: PusherApp, channel: string): void;
  /** Corrects members lists from the presence store (presence-watch.ts). */
  readonly presenceWatch?: PresenceWatch;
}

/** Pusher's limit on `client-*` events: 10 per second per connection. */
const CLIENT_EVENT_RATE = { perSecond: 10, burst: 10 };

/** A socket_id as Pusher's SDKs check it: `\d+\.\d+`. */
function newSocketId(): string {
  return `${randomInt(1, 2 ** 47)}.${randomInt(1, 2 ** 47)}`;
}

/** The credentials of an app's anonymous connections, shared: every channel of the app, checked per type by commands.ts. */
const appCredentials = new WeakMap<PusherApp, Credentials>();

function credentialsOf(app: PusherApp): Credentials {
  let credentials = appCredentials.get(app);
  if (credentials === undefined) {
    const prefix = appPrefix(app.id);
    credentials = Object.freeze({
      userId: '',
      canSubscribe: (channel: string) => channel.startsWith(prefix),
      canPublish: () => false,
    });
    appCredentials.set(app, credentials);
  }
  return credentials;
}

export class PusherConnection implements CommandPeer<PusherRef>, Reconciler {
  readonly kind = 'pusher' as const;
  readonly app: PusherApp;
  readonly socketId = newSocketId();
  /** The app's Herald namespace (channels.ts). */
  readonly prefix: string;
  readonly hub: Hub;
  readonly #pipe: PusherPipe;
  readonly hooks: PusherHooks;
  readonly #commands: CommandSession<PusherRef>;
  /**
   * Per presence channel this connection is in: each member's Herald clients, so that a user with
   * several connections is added when the first joins and removed when the last leaves, as Pusher does.
   */
  readonly #members = new Map<string, Map<string, Set<string>>>();
  /**
   * Per presence channel, members the store and this connection disagree about, seen once: a
   * second sweep that still disagrees corrects the client (a single read may race a join or leave).
   */
  readonly #suspects = new Map<string, Map<string, 'add' | 'remove'>>();
  /** This connection's member id per presence channel, for the `user_id` of its client events. */
  readonly presenceUser = new Map<string, string>();
  #clientEvents: TokenBucket | undefined;
  /** The user of `pusher:signin`, once signed in. */
  user: string | undefined;
  #closed = false;

  constructor(ctx: TransportContext, app: PusherApp, pipe: PusherPipe, hooks: PusherHooks = {}) {
    this.app = app;
    this.hooks = hooks;
    this.prefix = appPrefix(app.id);
    this.hub = ctx.hub;
    this.#pipe = pipe;
    this.#commands = new CommandSession<PusherRef>(ctx.hub, this, {
      // Pusher connections carry no token: the app key was checked at the handshake, and each
      // private, presence and user channel is authorized by its own signature (commands.ts).
      authenticate: () => credentialsOf(app),
      commandRate: ctx.commandRate,
      pingIntervalSeconds: ctx.pingIntervalSeconds,
      connectCommand: false,
      commands: PUSHER_COMMANDS,
    });
  }

  /** Opens the hub session and greets the client. Throws as `CommandSession.open` (not ready, user cap). */
  start(activityTimeoutSeconds: number): void {
    this.#commands.open(credentialsOf(this.app));
    this.send(
      message('pusher:connection_established', { socket_id: this.socketId, activity_timeout: activityTimeoutSeconds }),
    );
  }

  get session(): CommandSession<PusherRef> {
    return this.#commands;
  }

  /** One message from the client, as JSON text. */
  receive(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.#commands.violation('a message that is not JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return this.#commands.violation('a message that is not a JSON object');
    }
    const { event, channel } = parsed as { event?: unknown; channel?: unknown };
    let data = (parsed as { data?: unknown }).data;
    if (typeof event !== 'string') return this.#commands.violation('a message without an event name');
    if (event.startsWith('client-')) {
      const ref: PusherRef = { connection: this, event, ...(typeof channel === 'string' ? { channel } : {}) };
      return this.#commands.receive(ref, CLIENT_EVENT, { channel, data, event });
    }
    if (typeof data === 'string') {
      // Some clients send the data of pusher:* events as JSON text.
      try {
        data = JSON.parse(data);
      } catch {
        // left as it is: the command says what is wrong with it
      }
    }
    const params = (typeof data === 'object' && data !== null && !Array.isArray(data) ? data : {}) as Params;
    const named = typeof params.channel === 'string' ? params.channel : undefined;
    const ref: PusherRef = { connection: this, event, ...(named === undefined ? {} : { channel: named }) };
    if (event === 'pusher:ping') return this.#commands.receive(ref, 'ping', {});
    if (PUSHER_COMMANDS.has(event)) return this.#commands.receive(ref, event, params);
    this.#commands.reject(ref, new HeraldError('bad_request', `unknown event ${JSON.stringify(event.slice(0, 64))}`));
  }

  /** The client went away. */
  closed(reason: string): void {
    this.#forgetAll();
    this.#closed = true;
    this.#commands.peerClosed(reason);
  }

  send(json: string): void {
    if (!this.#closed) this.#pipe.send(json);
  }

  /** Takes a `client-*` event from the client's budget; false past Pusher's rate. */
  takeClientEvent(): boolean {
    this.#clientEvents ??= new TokenBucket(CLIENT_EVENT_RATE, this.hub.now());
    return this.#clientEvents.tryTake(this.hub.now());
  }

  // ---- presence members -------------------------------------------------------------------

  /** The members of a presence channel at subscribe time: Pusher's `presence` object for subscription_succeeded. */
  trackMembers(
    channel: string,
    clients: readonly ClientInfo[],
  ): { ids: string[]; hash: Record<string, unknown>; count: number } {
    const members = new Map<string, Set<string>>();
    const hash: Record<string, unknown> = {};
    for (const client of clients) {
      if (client.userId === '') continue;
      let ids = members.get(client.userId);
      if (ids === undefined) members.set(client.userId, (ids = new Set()));
      ids.add(client.clientId);
      if (!Object.hasOwn(hash, client.userId)) hash[client.userId] = client.info ?? null;
    }
    this.#members.set(channel, members);
    this.hooks.presenceWatch?.add(heraldChannel(this.app.id, channel), this);
    const ids = [...members.keys()];
    return { ids, hash, count: ids.length };
  }

  forgetMembers(channel: string): void {
    if (this.#members.delete(channel)) this.hooks.presenceWatch?.remove(heraldChannel(this.app.id, channel), this);
    this.#suspects.delete(channel);
    this.presenceUser.delete(channel);
  }

  /** Compares the store's members of a presence channel (by user, with their info) with the client's. */
  reconcile(heraldName: string, present: ReadonlyMap<string, unknown>): void {
    const channel = pusherChannel(this.prefix, heraldName);
    const members = channel === undefined ? undefined : this.#members.get(channel);
    if (channel === undefined || members === undefined || this.#closed) return;
    let suspects = this.#suspects.get(channel);
    if (suspects === undefined) this.#suspects.set(channel, (suspects = new Map()));
    for (const userId of [...members.keys()]) {
      if (present.has(userId)) suspects.delete(userId);
      else if (suspects.get(userId) !== 'remove') suspects.set(userId, 'remove');
      else {
        suspects.delete(userId);
        members.delete(userId);
        this.send(message('pusher_internal:member_removed', { user_id: userId }, channel));
      }
    }
    for (const [userId, info] of present) {
      if (members.has(userId)) continue;
      if (suspects.get(userId) !== 'add') suspects.set(userId, 'add');
      else {
        suspects.delete(userId);
        members.set(userId, new Set());
        this.send(message('pusher_internal:member_added', { user_id: userId, user_info: info }, channel));
      }
    }
    for (const userId of suspects.keys()) {
      if (present.has(userId) === members.has(userId)) suspects.delete(userId);
    }
  }

  #forgetAll(): void {
    for (const channel of [...this.#members.keys()]) this.forgetMembers(channel);
  }

  // ---- CommandPeer ------------------------------------------------------------------------

  answer(ref: PusherRef, answer: Answer): boolean {
    if (answer.method === 'ping') this.send(message('pusher:pong', {}));
    // Subscribe answers were written by the command itself (subscription_succeeded); the cache
    // channel's last event, if any, follows as a publication.
    void ref;
    return false;
  }

  refuse(ref: PusherRef, error: HeraldError): void {
    if (ref.event === 'pusher:subscribe' && ref.channel !== undefined) {
      const status =
        error.code === 'unauthorized' || error.code === 'forbidden' ? 401 : error.code === 'bad_channel' ? 400 : 500;
      const type = status === 401 ? 'AuthError' : 'SubscriptionError';
      this.send(message('pusher:subscription_error', { type, error: error.message, status }, ref.channel));
      return;
    }
    if (ref.event === 'pusher:signin') {
      this.send(errorMessage(PusherCode.Unauthorized, error.message));
      return;
    }
    const code =
      error.code === 'rate_limited'
        ? PusherCode.ClientEventRejected
        : error.code === 'unauthorized' || error.code === 'forbidden'
          ? PusherCode.Unauthorized
          : null;
    this.send(errorMessage(code, error.message));
  }

  drained(): Promise<boolean> {
    return this.#pipe.drained(this.hub.limits.maxQueueBytes);
  }

  bufferedBytes(): number {
    return this.#pipe.bufferedBytes();
  }

  writePublication(delivery: Delivery): void {
    if (this.#closed) return;
    const publication = delivery.encoded(pusherPublication);
    if (publication.from === this.socketId) return;
    this.#pipe.sendPublication(publication);
  }

  writeJoinLeave(kind: 'join' | 'leave', channel: string, client: ClientInfo): void {
    const name = pusherChannel(this.prefix, channel);
    const members = name === undefined ? undefined : this.#members.get(name);
    if (members === undefined || client.userId === '') return;
    let ids = members.get(client.userId);
    if (kind === 'join') {
      const known = ids !== undefined;
      if (ids === undefined) members.set(client.userId, (ids = new Set()));
      ids.add(client.clientId);
      if (!known) {
        this.send(
          message('pusher_internal:member_added', { user_id: client.userId, user_info: client.info ?? null }, name),
        );
      }
      return;
    }
    if (ids === undefined || !ids.delete(client.clientId) || ids.size > 0) return;
    members.delete(client.userId);
    this.send(message('pusher_internal:member_removed', { user_id: client.userId }, name));
  }

  /**
   * The hub lost the channel's position (a broker gap it could not fill). Pusher cannot end one
   * subscription, so the connection ends with "reconnect now" (4200) and pusher-js subscribes
   * again: a gap is never silent.
   */
  writeUnsubscribed(_channel: string, _code: number, reason: string): void {
    this.#commands.disconnect(closeInfo(CloseCode.InsufficientState, reason));
  }

  end(info: DisconnectInfo): void {
    if (this.#closed) return;
    this.#forgetAll();
    this.#closed = true;
    this.#pipe.close(pusherCloseCode(info), info.reason);
  }
}
