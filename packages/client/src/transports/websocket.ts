/**
 * WebSocket (PROTOCOL.md section 5): JSON commands with ids, answered once each, and pushes.
 * Opened means the `connect` command was answered. Subscriptions are sent as `subscribe` with the
 * subscription's position as `since`, so every (re)subscribe resumes where the app is.
 */
import type { ChannelState, ClientInfo, DisconnectInfo } from '@herald/protocol';
import { HeraldClientError } from '../errors.js';
import type { Publication, Subscription } from '../subscription.js';
import type { Host, RequestMethod, Transport, WebSocketLike } from './transport.js';

interface Frame {
  readonly id?: number;
  readonly result?: Record<string, unknown>;
  readonly error?: { readonly code: HeraldClientError['code']; readonly message: string };
  readonly push?: string;
  readonly pub?: Publication;
  readonly channel?: string;
  readonly client?: ClientInfo;
  readonly code?: number;
  readonly reason?: string;
  readonly reconnect?: boolean;
}

/**
 * Replies are handled synchronously, never through a promise: `ws` in Node.js emits every frame
 * of a TCP read in one go, so a subscribe answer resolved on a microtask would be seen after the
 * live publication that follows it in the same read.
 */
type Reply = (error: HeraldClientError | undefined, result: Record<string, unknown>) => void;

/** Close codes that say the network failed rather than the hub speaking. */
const NO_VERDICT = new Set([1005, 1006, 1015]);
const OPEN = 1;
/**
 * Commands sent and not yet answered, at most; later ones wait their turn, in order. The hub runs
 * one command at a time per connection, so a deeper pipeline gains nothing, and it ends a
 * connection with 4005 past 64 commands waiting: without a window, an app subscribing to a hundred
 * channels (or calling `publish` a hundred times in one tick) is cut off, reconnects, sends them
 * all again and is cut off again, possibly forever.
 */
const MAX_IN_FLIGHT = 16;

interface Waiting {
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly reply: Reply;
}

export class WebSocketTransport implements Transport {
  readonly name = 'websocket' as const;
  readonly #host: Host;
  #ws: WebSocketLike | undefined;
  #done = false;
  #opened = false;
  #nextId = 0;
  readonly #calls = new Map<number, Reply>();
  /** Commands waiting for room in the window, oldest first. */
  readonly #backlog: Waiting[] = [];
  /** The subscription each channel was subscribed for on this connection. */
  readonly #subs = new Map<string, Subscription>();
  #goodbye: DisconnectInfo | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #heard = true;

  constructor(host: Host) {
    this.#host = host;
  }

  open(): void {
    void this.#open();
  }

  async #open(): Promise<void> {
    const host = this.#host;
    let token: string | undefined;
    try {
      token = await host.token(true);
    } catch (error) {
      this.#end({ code: 1006, reason: 'no token', verdict: true, error: error as HeraldClientError });
      return;
    }
    if (this.#done) return;
    let ws: WebSocketLike;
    try {
      ws = new (host.WebSocket as NonNullable<Host['WebSocket']>)(host.base.replace(/^http/, 'ws') + '/ws');
    } catch {
      // A URL the platform refuses (mixed content, a bad port): as if the connection failed.
      this.#end({ code: 1006, reason: 'WebSocket refused the URL', verdict: false });
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      // A refused token is answered with close 4001, which ends the connection by itself.
      this.#call('connect', token === undefined ? {} : { token }, (error, result) => {
        if (error !== undefined) return;
        this.#opened = true;
        this.#startHeartbeat(Number(result.pingInterval) || 25);
        host.opened(this, result);
      });
    };
    ws.onmessage = (event: { data: unknown }) => this.#onFrame(String(event.data));
    ws.onclose = (event: { code: number; reason: string }) => {
      const goodbye = this.#goodbye;
      this.#end({
        code: event.code,
        reason: event.reason || goodbye?.reason || '',
        verdict: !NO_VERDICT.has(event.code),
        ...(goodbye === undefined ? {} : { reconnect: goodbye.reconnect }),
      });
    };
    // `ws` in Node.js throws on an 'error' event without a listener: keep one for its lifetime.
    ws.onerror = noop;
  }

  #call(method: string, params: Record<string, unknown>, reply: Reply = noop): void {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== OPEN || this.#done) {
      return reply(new HeraldClientError('network', 'not connected'), {});
    }
    if (this.#calls.size >= MAX_IN_FLIGHT || this.#backlog.length > 0) {
      this.#backlog.push({ method, params, reply });
      return;
    }
    this.#send(ws, method, params, reply);
  }

  #send(ws: WebSocketLike, method: string, params: Record<string, unknown>, reply: Reply): void {
    const id = ++this.#nextId;
    this.#calls.set(id, reply);
    ws.send(JSON.stringify({ id, method, params }));
  }

  /** An answer made room in the window: send what waits, oldest first. */
  #sendBacklog(): void {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== OPEN || this.#done) return;
    while (this.#calls.size < MAX_IN_FLIGHT) {
      const next = this.#backlog.shift();
      if (next === undefined) return;
      this.#send(ws, next.method, next.params, next.reply);
    }
  }

  call(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) =>
      this.#call(method, params, (error, result) => (error === undefined ? resolve(result) : reject(error))),
    );
  }

  request(method: RequestMethod, params: Record<string, unknown>): Promise<unknown> {
    return this.call(method, params);
  }

  async renew(): Promise<number | undefined> {
    const token = await this.#host.token(true);
    const result = await this.call('refresh', { token });
    return result.expiresIn as number | undefined;
  }

  sync(): void {
    if (!this.#opened) return;
    const subs = this.#host.subs;
    for (const [channel, sub] of this.#subs) {
      if (subs.get(channel) === sub) continue;
      this.#subs.delete(channel);
      this.#call('unsubscribe', { channel });
    }
    for (const sub of subs.values()) if (!this.#subs.has(sub.channel)) this.#subscribe(sub);
  }

  #subscribe(sub: Subscription): void {
    const channel = sub.channel;
    this.#subs.set(channel, sub);
    // Commands run in order on the hub: the answer comes before any live push for the channel.
    const params = { channel, since: sub.position, ...(sub.joinLeave ? { joinLeave: true } : {}) };
    this.#call('subscribe', params, (error, result) => {
      if (this.#subs.get(channel) !== sub || this.#done) return;
      if (error !== undefined) {
        this.#subs.delete(channel);
        this.#host.refused(this, sub, error);
        return;
      }
      const { offset, epoch, recovered, publications } = result as {
        offset: number;
        epoch: string;
        recovered?: boolean;
        publications?: Publication[];
      };
      const state = { offset, epoch, ...(recovered === undefined ? {} : { recovered }) };
      this.#host.confirmed(this, sub, state, true, publications);
    });
  }

  #onFrame(text: string): void {
    this.#heard = true;
    let frame: Frame;
    try {
      frame = JSON.parse(text) as Frame;
    } catch {
      return;
    }
    const host = this.#host;
    if (typeof frame.id === 'number') {
      const reply = this.#calls.get(frame.id);
      this.#calls.delete(frame.id);
      const error = frame.error && new HeraldClientError(frame.error.code, frame.error.message);
      reply?.(error, frame.result ?? {});
      this.#sendBacklog();
      return;
    }
    switch (frame.push) {
      case 'pub':
        host.publication(this, frame.pub as Publication);
        return;
      case 'join':
      case 'leave':
        host.presence(this, frame.push, frame.channel as string, frame.client as ClientInfo);
        return;
      case 'unsub': {
        const sub = this.#subs.get(frame.channel as string);
        if (sub === undefined) return;
        this.#subs.delete(sub.channel);
        host.unsubscribed(this, sub, frame.code as number, frame.reason ?? '');
        return;
      }
      case 'sub': {
        const sub = host.serverSubscribed(this, frame as unknown as ChannelState & { channel: string });
        // Held here as if subscribed by this transport: sync() will not ask for it again.
        if (sub !== undefined) this.#subs.set(sub.channel, sub);
        return;
      }
      case 'disconnect':
        this.#goodbye = frame as DisconnectInfo;
    }
  }

  /**
   * Browsers cannot see the hub's WebSocket pings, so a dead network could go unnoticed for
   * minutes: every ping interval the client sends a `ping` command, and a connection that heard
   * nothing at all since the previous tick is treated as lost.
   */
  #startHeartbeat(seconds: number): void {
    this.#heartbeat = setInterval(() => {
      if (!this.#heard) {
        this.#end({ code: 1006, reason: 'no answer to ping', verdict: false });
        return;
      }
      this.#heard = false;
      this.#call('ping', {});
    }, seconds * 1000);
  }

  close(): void {
    this.#end(undefined);
  }

  /** Ends once: fails the calls in flight (the client retries what may be retried), reports unless closed. */
  #end(info: Parameters<Host['ended']>[1] | undefined): void {
    if (this.#done) return;
    this.#done = true;
    clearInterval(this.#heartbeat);
    const ws = this.#ws;
    if (ws !== undefined) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    const lost = new HeraldClientError('network', 'connection lost');
    const calls = [...this.#calls.values(), ...this.#backlog.map((b) => b.reply)];
    this.#calls.clear();
    this.#backlog.length = 0;
    for (const reply of calls) reply(lost, {});
    if (info !== undefined) this.#host.ended(this, info);
  }
}

function noop(): void {}
