/**
 * A broker for the core's unit tier: real storage (a MemoryBroker underneath, so offsets, epochs,
 * trimming and `recovered` are the embedded broker's), with the fan-out and history reads in the
 * test's hands. Publications are stored at once; whether and when they reach the hub, and whether
 * history answers, slowly or not at all, is scripted.
 */
import {
  MemoryBroker,
  type Broker,
  type BrokerEvents,
  type NodeReplies,
  type NodeRequest,
  type ControlMessage,
  type HistoryQuery,
  type HistoryResult,
  type PublicationRecord,
  type PublishDraft,
  type PublishResult,
} from '@herald/server';

export class ScriptedBroker implements Broker {
  readonly name = 'scripted';
  readonly store: MemoryBroker;
  /** Stored publications not yet handed to the hub (with `autoDeliver` off). */
  readonly pending: PublicationRecord[] = [];
  /** Every history query, in order. */
  readonly historyQueries: HistoryQuery[] = [];
  /** Hand each stored publication to the hub at once. */
  autoDeliver = true;
  /** History reads fail (as a broker that lost its connection). */
  failHistory = false;
  /** While set, history answers wait for it (each read is made when asked, answered when it opens). */
  historyGate: Promise<void> | undefined;
  #events: BrokerEvents | undefined;
  readonly #subscribed = new Set<string>();

  constructor(size = 1000, ttlSeconds = 600, now?: () => number) {
    this.store = new MemoryBroker({ size, ttlSeconds, ...(now === undefined ? {} : { now }) });
  }

  get ready(): boolean {
    return this.#events !== undefined;
  }

  async start(events: BrokerEvents): Promise<void> {
    this.#events = events;
    await this.store.start({ publication: () => undefined, control: () => undefined, readiness: () => undefined });
  }

  async close(): Promise<void> {
    this.#events = undefined;
    await this.store.close();
  }

  async publish(draft: PublishDraft): Promise<PublishResult> {
    const result = await this.store.publish(draft);
    if (!result.duplicate && this.#subscribed.has(draft.channel)) {
      if (this.autoDeliver) this.deliver(result.record);
      else this.pending.push(result.record);
    }
    return result;
  }

  /** Hands a record to the hub as the broker's fan-out would (any record: a copy, a forgery, a duplicate). */
  deliver(record: PublicationRecord): void {
    this.#events?.publication(record);
  }

  /** Delivers the pending publications, except those `drop` says were lost on the way. */
  release(drop: (record: PublicationRecord) => boolean = () => false): void {
    for (const record of this.pending.splice(0)) if (!drop(record)) this.deliver(record);
  }

  readiness(ready: boolean): void {
    this.#events?.readiness(ready);
  }

  async subscribe(channel: string): Promise<void> {
    this.#subscribed.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#subscribed.delete(channel);
  }

  /** Reads at once and answers when the gate opens: a slow reply, as over a network. */
  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    this.historyQueries.push(query);
    const result = this.store.historyNow(channel, query);
    if (this.historyGate !== undefined) await this.historyGate;
    if (this.failHistory) throw new Error('scripted history failure');
    return result;
  }

  async broadcast(message: ControlMessage): Promise<void> {
    if (message.kind === 'disconnect_user' || this.#subscribed.has(message.channel)) this.#events?.control(message);
  }

  async request(message: NodeRequest): Promise<NodeReplies> {
    const answer = (await this.#events?.request?.(message)) ?? null;
    return { answers: [answer], missing: 0 };
  }

  async removeHistory(): Promise<void> {}
}

/** A gate a test opens by hand. */
export function gate(): { readonly promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
