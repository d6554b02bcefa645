/**
 * One channel the app follows. It owns the channel's stream position: the last publication handed
 * to the app. That position is what every transport resumes from, and what makes delivery
 * exactly-once: a publication at or below it is a duplicate and is dropped; one that does not
 * follow it directly is a gap, which the client repairs by resuming (or reports as
 * `recovered: false`), never by handing the app a hole.
 */
import type {
  ChannelState,
  ClientInfo,
  Position,
  StreamStatus,
  Publication as WirePublication,
} from '@herald/protocol';
import { Emitter } from './emitter.js';
import type { HeraldClientError } from './errors.js';

/** A publication as delivered to the app; `offset`/`epoch` are absent on ephemeral ones. */
export interface Publication<T = unknown> extends Omit<WirePublication, 'data'> {
  readonly data: T;
}

export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

export interface RecoveredEvent {
  /**
   * `true`: every publication since the last one delivered follows, exactly once, in order.
   * `false`: the hub could not replay them (history trimmed, or the stream was reset, for example
   * a memory broker restarted); reload the state the channel describes, then go on from here.
   */
  readonly recovered: boolean;
  readonly position: Position;
}

/** A text stream's text so far (docs/streams.md), after each publication of it. */
export interface StreamText {
  /** The stream's id: the offset of the publication that opened it. */
  readonly id: number;
  /** All the text so far: appends merged in order, whether they came one by one or rolled up. */
  readonly text: string;
  readonly status: StreamStatus;
}

export interface SubscriptionEvents<T> {
  /** Each publication, once, in offset order (a text stream's appends may come merged). */
  publication: Publication<T>;
  /** A text stream on the channel grew or ended. */
  stream: StreamText;
  /** After every resume from a known position: a reconnect, a transport change, or `since`. */
  recovered: RecoveredEvent;
  state: SubscriptionState;
  /** Someone subscribed to the channel (only with `joinLeave: true`; not over long-polling). */
  join: ClientInfo;
  leave: ClientInfo;
  /** The hub refused the subscription (for example `forbidden`); it is then `unsubscribed`. */
  error: HeraldClientError;
}

export interface SubscribeOptions {
  /** Receive `join` / `leave` events. */
  readonly joinLeave?: boolean;
  /** Resume from a position the app kept (for example across a page reload). */
  readonly since?: Position;
}

export class Subscription<T = unknown> extends Emitter<SubscriptionEvents<T>> {
  readonly channel: string;
  readonly joinLeave: boolean;
  #position: Position | undefined;
  #state: SubscriptionState = 'subscribing';
  /** The text streams seen on the channel, by id. */
  readonly #streams = new Map<number, StreamText>();
  readonly #leave: (sub: Subscription<T>) => void;

  /** Created by `Herald.subscribe`, not by apps. */
  constructor(channel: string, options: SubscribeOptions, leave: (sub: Subscription<T>) => void) {
    super();
    this.channel = channel;
    this.joinLeave = options.joinLeave === true;
    this.#position = options.since;
    this.#leave = leave;
  }

  /** The last publication delivered (or where the subscription started); keep it to resume later. */
  get position(): Position | undefined {
    return this.#position;
  }

  get state(): SubscriptionState {
    return this.#state;
  }

  unsubscribe(): void {
    this.#leave(this);
  }

  /** @internal */
  _setState(state: SubscriptionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this._emit('state', state);
  }

  /**
   * @internal The hub confirmed the subscription at `state` (a subscribe answer, an SSE
   * `herald.connected` entry, a poll answer). Resumed and recovered, the position stays where the
   * app is and the replay follows; otherwise it starts at the hub's position. `report: false`
   * keeps quiet a successful resume the app does not need to hear about (an SSE stream reopened
   * because the channel set changed); a failed one is always reported.
   */
  _confirm(state: ChannelState, report: boolean): void {
    const resumed = this.#position !== undefined;
    const recovered = resumed && state.recovered === true;
    if (!recovered) this.#position = { offset: state.offset, epoch: state.epoch };
    this._setState('subscribed');
    if (resumed && (report || !recovered)) {
      this._emit('recovered', { recovered, position: this.#position as Position });
    }
  }

  /** @internal Hands `pub` to the app unless it is a duplicate. Returns false on a gap (nothing delivered). */
  _deliver(pub: Publication<T>): boolean {
    const p = this.#position;
    const { stream, append } = pub;
    if (pub.offset !== undefined && pub.epoch !== undefined) {
      // A rolled-up publication covers offsets from its first piece to its own.
      const first = append?.from ?? (stream?.rolledUp === true ? (stream.id as number) : pub.offset);
      if (p !== undefined) {
        if (pub.epoch !== p.epoch || first > p.offset + 1) return false;
        if (pub.offset <= p.offset) {
          // A joiner's open streams so far lie below its position: new to it, they are not duplicates.
          if (stream?.rolledUp !== true || this.#streams.has(stream.id as number)) return true;
        } else this.#position = { offset: pub.offset, epoch: pub.epoch };
      } else this.#position = { offset: pub.offset, epoch: pub.epoch };
    }
    this._emit('publication', pub);
    if (stream !== undefined) this.#text(stream.id ?? (pub.offset as number), String(pub.data), stream.status, true);
    else if (append !== undefined) this.#text(append.to, String(pub.data), append.status ?? 'open', false);
    return true;
  }

  /** The text of open stream `id` so far; undefined for one not seen open, or closed. */
  streamText(id: number): StreamText | undefined {
    return this.#streams.get(id);
  }

  #text(id: number, data: string, status: StreamStatus, whole: boolean): void {
    const known = this.#streams.get(id);
    // An append to a stream never seen open, or after its close, counts for nothing (docs/streams.md).
    if (!whole && known?.status !== 'open') return;
    const next = { id, text: whole ? data : (known as StreamText).text + data, status };
    // A closed stream is forgotten: its last event has the final text, and later appends count for nothing.
    if (status === 'open') this.#streams.set(id, next);
    else this.#streams.delete(id);
    this._emit('stream', next);
  }
}
