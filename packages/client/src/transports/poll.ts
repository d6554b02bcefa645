/**
 * Long-polling (PROTOCOL.md section 7), the last resort: one request at a time, each resuming from
 * the SDK's cursor. The first poll of a connection asks with `timeout=0` so it answers at once:
 * that answer is what "connected" means here. Nothing is held on the hub between polls, so an
 * answer lost on the way is simply asked for again.
 */
import type { ChannelState } from '@herald/protocol';
import { HeraldClientError } from '../errors.js';
import { authorization, fetchJson, httpEnded, httpRequest } from '../http.js';
import type { Publication, Subscription } from '../subscription.js';
import { streamQuery } from './stream-query.js';
import type { Ended, Host, RequestMethod, Transport } from './transport.js';

interface Answer {
  readonly publications: readonly Publication[];
  readonly channels: Readonly<Record<string, ChannelState>>;
  /** The hub ended the poll (`POST /api/disconnect`, a revoked token, a shutdown). */
  readonly disconnect?: { readonly code: number; readonly reason: string; readonly reconnect: boolean };
}

export class PollTransport implements Transport {
  readonly name = 'poll' as const;
  readonly #host: Host;
  #done = false;
  #opened = false;
  #answers = 0;
  #poll: AbortController | undefined;
  #wake: (() => void) | undefined;

  constructor(host: Host) {
    this.#host = host;
  }

  open(): void {
    void this.#loop();
  }

  request(method: RequestMethod, params: Record<string, unknown>): Promise<unknown> {
    return httpRequest(this.#host, method, params);
  }

  /** Drops the poll in flight (its answer is asked for again) and polls for the new set. */
  sync(): void {
    const poll = this.#poll;
    this.#poll = undefined;
    poll?.abort();
    this.#wake?.();
  }

  async renew(): Promise<undefined> {
    await this.#host.token(true);
    return undefined;
  }

  close(): void {
    this.#done = true;
    this.sync();
  }

  #end(info: Ended): void {
    if (this.#done) return;
    this.close();
    this.#host.ended(this, info);
  }

  async #loop(): Promise<void> {
    const host = this.#host;
    let fresh = true;
    while (!this.#done) {
      const subs = new Map(host.subs);
      if (subs.size === 0) {
        this.#markOpened();
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      const poll = new AbortController();
      this.#poll = poll;
      const timeout = this.#opened ? host.pollTimeoutSeconds : 0;
      const hung = setTimeout(() => poll.abort(), timeout * 1000 + host.connectTimeoutMs);
      let answer: Answer;
      try {
        const token = await host.token(fresh);
        fresh = false;
        const query = streamQuery(subs.values(), 'cursor');
        query.set('timeout', String(timeout));
        answer = (await fetchJson(host, `${host.base}/poll?${query}`, {
          headers: authorization(token),
          cache: 'no-store',
          signal: poll.signal,
        })) as Answer;
      } catch (error) {
        if (this.#done) return;
        if (this.#poll !== poll) continue; // superseded by sync()
        const e = error instanceof HeraldClientError ? error : new HeraldClientError('network', 'poll failed');
        if (e.code === 'forbidden') {
          this.#refuse(subs, e);
          continue;
        }
        this.#end(httpEnded(e));
        return;
      } finally {
        clearTimeout(hung);
      }
      if (this.#poll !== poll) continue;
      this.#markOpened();
      this.#deliver(subs, answer);
    }
  }

  #refuse(subs: Map<string, Subscription>, error: HeraldClientError): void {
    const named = [...subs.values()].filter((s) => error.message.endsWith(` ${s.channel}`));
    for (const sub of named.length > 0 ? named : subs.values()) this.#host.refused(this, sub, error);
  }

  /**
   * A poll answer's channel state is the position *after* its publications. A subscription that
   * starts over (new, or not recovered) therefore starts just before the answer's first
   * publication of its channel, and takes every one of them.
   */
  #deliver(subs: Map<string, Subscription>, answer: Answer): void {
    const host = this.#host;
    const report = this.#answers++ === 0;
    for (const [channel, state] of Object.entries(answer.channels)) {
      const sub = subs.get(channel);
      if (sub === undefined) {
        // A channel of the token's `subs` the app did not ask for: a subscription of its own, polled from now on.
        host.serverSubscribed(this, { channel, ...state });
        continue;
      }
      const first =
        state.recovered === true ? undefined : answer.publications.find((p) => p.channel === channel && p.offset);
      host.confirmed(
        this,
        sub,
        first === undefined ? state : { ...state, offset: (first.offset as number) - 1, epoch: first.epoch as string },
        report,
      );
    }
    for (const pub of answer.publications) host.publication(this, pub);
    // A poll has no connection to lose: only "do not come back" ends it.
    const bye = answer.disconnect;
    if (bye?.reconnect === false) this.#end({ ...bye, verdict: true });
  }

  #markOpened(): void {
    if (this.#opened) return;
    this.#opened = true;
    this.#host.opened(this, {});
  }
}
