/**
 * A transport for the core's unit tier: it records everything the core writes and lets the test
 * decide how much it holds unread (`buffered`) and when the client takes it (`drain`).
 */
import type { ClientInfo, DisconnectInfo, HeraldError } from '@herald/protocol';
import type { Answer, CommandPeer, Delivery, Subscription, TransportKind } from '@herald/server';

export interface Written {
  readonly channel: string;
  readonly offset: number;
  readonly epoch: string;
}

export class FakePeer implements CommandPeer<number> {
  readonly kind: TransportKind;
  /** Publications written, in order. */
  readonly written: Written[] = [];
  readonly answers: Array<{ id: number; answer: Answer }> = [];
  readonly refusals: Array<{ id: number; error: HeraldError }> = [];
  readonly unsubs: Array<{ channel: string; code: number; reason: string }> = [];
  readonly joinLeaves: Array<{ kind: string; channel: string; client: ClientInfo }> = [];
  ended: DisconnectInfo | undefined;
  /** What the client holds unread, in bytes (the test sets it). */
  buffered = 0;
  /** Count written publication bytes into `buffered`, as a client that does not read. */
  accumulate = false;
  /** Whether the answer to a subscribe carries its publications (WebSocket does). */
  carriesReplay: boolean;
  #waiters: Array<(taken: boolean) => void> = [];

  constructor(kind: TransportKind = 'websocket', carriesReplay = true) {
    this.kind = kind;
    this.carriesReplay = carriesReplay;
  }

  answer(id: number, answer: Answer): boolean {
    this.answers.push({ id, answer });
    return this.carriesReplay && answer.method === 'subscribe';
  }

  refuse(id: number, error: HeraldError): void {
    this.refusals.push({ id, error });
  }

  drained(): Promise<boolean> {
    if (this.buffered === 0) return Promise.resolve(true);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The client takes everything (true) or the wait times out (false). */
  drain(taken = true): void {
    if (taken) this.buffered = 0;
    for (const resolve of this.#waiters.splice(0)) resolve(taken);
  }

  /** The close code the core ended this with, if it did (a method: assertions do not narrow it). */
  endedCode(): number | undefined {
    return this.ended?.code;
  }

  get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  bufferedBytes(): number {
    return this.buffered;
  }

  writePublication(delivery: Delivery, sub: Subscription): void {
    const { channel, offset, epoch, json } = delivery.record;
    this.written.push({ channel, offset, epoch });
    if (this.accumulate) this.buffered += json.length;
    void sub;
  }

  writeJoinLeave(kind: 'join' | 'leave', channel: string, client: ClientInfo): void {
    this.joinLeaves.push({ kind, channel, client });
  }

  writeUnsubscribed(channel: string, code: number, reason: string): void {
    this.unsubs.push({ channel, code, reason });
  }

  end(info: DisconnectInfo): void {
    this.ended ??= info;
  }

  offsets(channel: string): number[] {
    return this.written.filter((w) => w.channel === channel).map((w) => w.offset);
  }
}
