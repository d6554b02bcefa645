/**
 * Server-Sent Events (PROTOCOL.md section 6), read with `fetch` rather than a native EventSource.
 * An EventSource reconnects by itself with the last `id:` and the URL it started with, so it can
 * neither carry a fresh token nor resume from the positions the app was given; it also hides the
 * HTTP status, so a 401 looks like a network error. Reading the stream with fetch keeps every
 * reconnect in the client's hands, sends the token in a header instead of the URL, and turns a
 * refusal into a typed error. One stream carries every subscription; when the set changes the
 * stream is reopened with the cursor, which loses nothing.
 */
import type { ChannelState, ClientInfo } from '@herald/protocol';
import type { HeraldClientError } from '../errors.js';
import { authorization, httpEnded, httpError, httpRequest } from '../http.js';
import { sseParser } from '../sse-parser.js';
import type { Publication, Subscription } from '../subscription.js';
import { streamQuery } from './stream-query.js';
import type { Ended, Host, RequestMethod, Transport } from './transport.js';

/**
 * A stream silent for this long is dead. The hub comments `: ping` at least every 20 s (PROTOCOL.md
 * section 6); one that says how often in `herald.connected` (`pingInterval`, seconds) is given two
 * intervals plus a margin for slow paths instead, which is the same 45 s at the protocol's 20 s.
 */
const IDLE_MS = 45_000;
const IDLE_MARGIN_MS = 5_000;

function idleAfter(pingInterval: unknown): number {
  return typeof pingInterval === 'number' && pingInterval > 0 ? pingInterval * 2000 + IDLE_MARGIN_MS : IDLE_MS;
}

export class SseTransport implements Transport {
  readonly name = 'sse' as const;
  readonly #host: Host;
  #stream: AbortController | undefined;
  /** Subscriptions of the current stream. */
  #streamSubs = new Map<string, Subscription>();
  #done = false;
  #opened = false;
  #streams = 0;
  #restarting = false;
  /** Silence after which the stream counts as dead: from the hub's ping interval once it said. */
  #idleMs = IDLE_MS;
  /** While the first stream of a transport opened without one waits for `herald.connected`. */
  #firstStreamTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: Host) {
    this.#host = host;
  }

  open(): void {
    void this.#start(true);
  }

  request(method: RequestMethod, params: Record<string, unknown>): Promise<unknown> {
    return httpRequest(this.#host, method, params);
  }

  sync(): void {
    const subs = this.#host.subs;
    const same = subs.size === this.#streamSubs.size && [...subs].every(([c, s]) => this.#streamSubs.get(c) === s);
    if (!same) this.#restart(false);
  }

  async renew(): Promise<undefined> {
    await this.#host.token(true);
    this.#restart(false);
    return undefined;
  }

  close(): void {
    this.#done = true;
    clearTimeout(this.#firstStreamTimer);
    this.#stream?.abort();
  }

  /** Reopens the stream once per turn, however many subscriptions changed in it. */
  #restart(fresh: boolean): void {
    if (this.#restarting || this.#done) return;
    this.#restarting = true;
    void Promise.resolve().then(() => {
      this.#restarting = false;
      if (!this.#done) void this.#start(fresh);
    });
  }

  #end(info: Ended): void {
    if (this.#done) return;
    this.close();
    // Opened without a stream and none ever started: a network that never lets a stream through
    // (a buffering proxy) must move the client on, not keep it reconnecting here.
    this.#host.ended(this, this.#opened && this.#streams === 0 && !info.verdict ? { ...info, unproven: true } : info);
  }

  async #start(fresh: boolean): Promise<void> {
    const host = this.#host;
    this.#stream?.abort();
    const stream = new AbortController();
    this.#stream = stream;
    const subs = new Map(host.subs);
    this.#streamSubs = subs;
    if (subs.size === 0) {
      // Nothing to stream; publish works over HTTP meanwhile.
      this.#markOpened(undefined);
      return;
    }
    let token: string | undefined;
    try {
      token = await host.token(fresh);
    } catch (error) {
      this.#end({ code: 1006, reason: 'no token', verdict: true, error: error as HeraldClientError });
      return;
    }
    if (this.#stream !== stream) return;
    clearTimeout(this.#firstStreamTimer);
    if (this.#opened && this.#streams === 0) {
      // The client's own connect timeout ended when this transport opened without a stream: the
      // first stream gets the same time to say `herald.connected`.
      this.#firstStreamTimer = setTimeout(() => {
        if (this.#stream !== stream) return;
        stream.abort();
        this.#end({ code: 1006, reason: 'the event stream did not start in time', verdict: false });
      }, host.connectTimeoutMs);
    }
    const query = streamQuery(subs.values(), 'lastEventId');
    if ([...subs.values()].some((s) => s.joinLeave)) query.set('joinLeave', '1');
    let res: Response;
    try {
      res = await host.fetch(`${host.base}/sse?${query}`, {
        headers: { accept: 'text/event-stream', ...authorization(token) },
        cache: 'no-store',
        signal: stream.signal,
      });
    } catch {
      if (this.#stream === stream) this.#end({ code: 1006, reason: 'stream request failed', verdict: false });
      return;
    }
    if (!res.ok || res.body === null) {
      const error = await httpError(res);
      if (this.#stream !== stream) return;
      if (error.code === 'forbidden') return this.#refuse(subs, error);
      this.#end(httpEnded(error));
      return;
    }
    await this.#read(stream, subs, res.body);
  }

  /**
   * One channel the token does not allow refuses the whole request (403). The hub names it; those
   * subscriptions fail and the stream reopens with the rest. Unnamed, all of them fail: never a loop.
   */
  #refuse(subs: Map<string, Subscription>, error: HeraldClientError): void {
    const named = [...subs.values()].filter((s) => error.message.endsWith(` ${s.channel}`));
    for (const sub of named.length > 0 ? named : subs.values()) this.#host.refused(this, sub, error);
    this.#restart(false);
  }

  async #read(
    stream: AbortController,
    subs: Map<string, Subscription>,
    body: ReadableStream<Uint8Array>,
  ): Promise<void> {
    const reader = body.getReader();
    // Settles a pending read whatever the fetch implementation does with the abort.
    stream.signal.addEventListener('abort', () => void reader.cancel().catch(noop));
    const decoder = new TextDecoder();
    const parse = sseParser((event, data) => this.#onEvent(stream, subs, event, data));
    let idle: ReturnType<typeof setTimeout> | undefined;
    try {
      for (;;) {
        clearTimeout(idle);
        idle = setTimeout(() => stream.abort(), this.#idleMs);
        const { done, value } = await reader.read();
        if (done || stream.signal.aborted) break;
        parse(decoder.decode(value, { stream: true }));
      }
    } catch {
      // cut, aborted or idle: decided below
    }
    clearTimeout(idle);
    if (this.#stream !== stream) return;
    stream.abort();
    this.#end({ code: 1006, reason: 'stream ended', verdict: false });
  }

  #onEvent(stream: AbortController, subs: Map<string, Subscription>, event: string, data: string): void {
    if (this.#stream !== stream) return;
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return;
    }
    const host = this.#host;
    switch (event) {
      case 'herald.connected': {
        clearTimeout(this.#firstStreamTimer);
        this.#idleMs = idleAfter(value.pingInterval);
        this.#markOpened(value.clientId as string);
        // The first stream of a connection reports every resume; a reopen only a failed one.
        const report = this.#streams++ === 0;
        const channels = value.channels as Record<string, ChannelState>;
        for (const [channel, state] of Object.entries(channels)) {
          const sub = subs.get(channel);
          if (sub !== undefined) host.confirmed(this, sub, state, report);
          else this.#serverSub(subs, { channel, ...state }); // the token's `subs`
        }
        return;
      }
      case 'herald.join':
      case 'herald.leave':
        host.presence(
          this,
          event === 'herald.join' ? 'join' : 'leave',
          value.channel as string,
          value.client as ClientInfo,
        );
        return;
      case 'herald.subscribed':
        this.#serverSub(subs, value as unknown as ChannelState & { channel: string });
        return;
      case 'herald.unsub': {
        const sub = subs.get(value.channel as string);
        if (sub !== undefined) host.unsubscribed(this, sub, value.code as number, String(value.reason));
        return;
      }
      case 'herald.disconnect':
        this.#end({
          code: value.code as number,
          reason: String(value.reason),
          reconnect: value.reconnect as boolean,
          verdict: true,
        });
        return;
    }
    if (!event.startsWith('herald.')) host.publication(this, value as unknown as Publication);
  }

  /** A channel the backend subscribed this stream to: it is part of the stream (sync() keeps it). */
  #serverSub(subs: Map<string, Subscription>, state: ChannelState & { channel: string }): void {
    const sub = this.#host.serverSubscribed(this, state);
    if (sub !== undefined) subs.set(sub.channel, sub);
  }

  #markOpened(clientId: string | undefined): void {
    if (this.#opened) return;
    this.#opened = true;
    this.#host.opened(this, clientId === undefined ? {} : { clientId });
  }
}

function noop(): void {}
