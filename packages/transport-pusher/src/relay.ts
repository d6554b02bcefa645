/**
 * The HTTP fallbacks on any node: a request for a session another node holds is relayed to that
 * node through the broker, on the hub's reserved `_herald:` channels (ephemeral publications:
 * nothing is stored), so a load balancer may send each of a client's requests anywhere.
 *
 * - The node holding a session listens on its inbox, `_herald:pusher-relay:{session}`.
 * - `xhr_send` elsewhere publishes the messages to the inbox.
 * - A receive request elsewhere listens on a reply channel of its own, asks the inbox to attach
 *   it, and writes into its response the frames the owner publishes there, until the owner ends
 *   it (a poll answered) or the client goes (then it tells the inbox).
 * - Which node holds a session is not recorded anywhere: a receive request for a session no
 *   node acknowledges within `PROBE_MS` opens a new one here. That wait is paid once per new
 *   fallback session, and only on a hub with a shared broker.
 *
 * The relay is one hidden hub session per node (transport `pusher-relay`), not in presence.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { HeraldError } from '@herald/protocol';
import type { Credentials, Delivery, Hub, Session, SessionTransport, Subscription } from '@herald/server';
import type { PusherFallback } from './fallback.js';
import type { Receiver } from './http-session.js';

/** How long a receive request waits for the node that holds its session to answer. */
export const PROBE_MS = 750;

const INBOX = '_herald:pusher-relay:';
const REPLY = '_herald:pusher-reply:';

type InboxMessage =
  | { readonly t: 'send'; readonly m: readonly string[] }
  | { readonly t: 'recv'; readonly r: string; readonly s: boolean }
  | { readonly t: 'gone'; readonly r: string };

type ReplyMessage = { readonly t: 'ok' } | { readonly t: 'f'; readonly f: string } | { readonly t: 'end' };

const RELAY_CREDENTIALS: Credentials = Object.freeze({
  userId: '',
  canSubscribe: (channel: string) => channel.startsWith(INBOX) || channel.startsWith(REPLY),
  canPublish: () => false,
});

export class Relay implements SessionTransport {
  readonly kind = 'pusher-relay';
  readonly #hub: Hub;
  readonly #fallback: PusherFallback;
  #session: Session | undefined;
  /** Reply channels this node listens on, with what to do with each message. */
  readonly #replies = new Map<string, (message: ReplyMessage) => void>();
  /** Remote receivers attached to this node's sessions, by reply channel: told when their client goes. */
  readonly #remote = new Map<string, EventEmitter>();

  constructor(hub: Hub, fallback: PusherFallback) {
    this.#hub = hub;
    this.#fallback = fallback;
  }

  /** Whether other nodes may hold sessions (a hub on the in-process broker is alone). */
  get clustered(): boolean {
    return this.#hub.broker.name !== 'memory';
  }

  #own(): Session {
    this.#session ??= this.#hub.openSession(this, RELAY_CREDENTIALS);
    return this.#session;
  }

  async #listen(channel: string): Promise<void> {
    const outcome = await this.#hub.subscribe(this.#own(), channel, { present: false });
    await this.#hub.activate(outcome);
  }

  #stop(channel: string): void {
    if (this.#session !== undefined && !this.#session.closed) this.#hub.unsubscribe(this.#session, channel);
  }

  #publish(channel: string, data: InboxMessage | ReplyMessage): Promise<unknown> {
    return this.#hub.publishInternal({ channel, data, ephemeral: true });
  }

  // ---- the node that holds a session ------------------------------------------------------

  /** A session opened here: listen on its inbox. */
  announce(sessionKey: string): void {
    if (!this.clustered) return;
    this.#listen(INBOX + sessionKey).catch(() => undefined);
  }

  retire(sessionKey: string): void {
    if (this.clustered) this.#stop(INBOX + sessionKey);
  }

  #onInbox(sessionKey: string, message: InboxMessage): void {
    if (message.t === 'send') return this.#fallback.deliverLocal(sessionKey, message.m);
    if (message.t === 'gone') {
      this.#remote.get(message.r)?.emit('close');
      this.#remote.delete(message.r);
      return;
    }
    const session = this.#fallback.local(sessionKey);
    if (session === undefined) return;
    const reply = message.r;
    const closeSignal = new EventEmitter();
    this.#remote.set(reply, closeSignal);
    const receiver: Receiver = {
      streaming: message.s,
      write: (text) => void this.#publish(reply, { t: 'f', f: text }).catch(() => undefined),
      // What a remote client has not taken is held by its own node, not here.
      buffered: () => 0,
      end: () => {
        this.#remote.delete(reply);
        void this.#publish(reply, { t: 'end' }).catch(() => undefined);
      },
    };
    void this.#publish(reply, { t: 'ok' })
      .then(() => this.#fallback.attachLocal(session, receiver, closeSignal))
      .catch(() => undefined);
  }

  // ---- a node that got a request for a session it does not hold -----------------------------

  /**
   * Relays a receive request to the node holding its session; false when no node answered in
   * `PROBE_MS` (then the session is new, and opens here).
   */
  async receiveRemote(
    sessionKey: string,
    receiver: Receiver,
    request: { once(event: 'close', f: () => void): unknown },
  ): Promise<boolean> {
    if (!this.clustered) return false;
    const reply = REPLY + randomBytes(12).toString('base64url');
    let acknowledged!: () => void;
    const ok = new Promise<boolean>((resolve) => {
      acknowledged = () => resolve(true);
      setTimeout(() => resolve(false), PROBE_MS).unref();
    });
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#replies.delete(reply);
      this.#stop(reply);
    };
    this.#replies.set(reply, (message) => {
      if (message.t === 'ok') acknowledged();
      else if (message.t === 'f') receiver.write(message.f);
      else {
        receiver.end();
        finish();
      }
    });
    try {
      await this.#listen(reply);
      await this.#publish(INBOX + sessionKey, { t: 'recv', r: reply, s: receiver.streaming });
    } catch {
      finish();
      throw new HeraldError('broker_unavailable', 'the broker did not answer; try again');
    }
    if (!(await ok)) {
      finish();
      return false;
    }
    request.once('close', () => {
      if (done) return;
      finish();
      void this.#publish(INBOX + sessionKey, { t: 'gone', r: reply }).catch(() => undefined);
    });
    return true;
  }

  /** Relays an `xhr_send` to the node holding its session. */
  async sendRemote(sessionKey: string, messages: readonly string[]): Promise<boolean> {
    if (!this.clustered) return false;
    await this.#publish(INBOX + sessionKey, { t: 'send', m: messages });
    return true;
  }

  // ---- SessionTransport: what the relay's subscriptions receive --------------------------

  bufferedBytes(): number {
    return 0;
  }

  writePublication(delivery: Delivery, subscription: Subscription): void {
    const channel = subscription.channel;
    const data = (JSON.parse(delivery.record.json) as { data?: unknown }).data;
    if (channel.startsWith(INBOX)) return this.#onInbox(channel.slice(INBOX.length), data as InboxMessage);
    this.#replies.get(channel)?.(data as ReplyMessage);
  }

  writeJoinLeave(): void {}

  writeUnsubscribed(): void {}

  end(): void {
    this.#session = undefined;
  }
}
