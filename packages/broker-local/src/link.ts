/**
 * A worker's connection to the primary's local broker. Failure contract: the primary is part of
 * the same machine and the same `herald serve`; when the link is lost the primary is gone, so
 * nothing reconnects. Every request waiting for a reply fails with `broker_unavailable`, every
 * later one fails at once, and `onLost` tells the broker (readiness goes false, the worker exits).
 *
 * Requests are bounded: past `maxPending` unanswered ones a new request is refused at once (429),
 * as the Redis and NATS brokers refuse past their publish queue.
 */
import { connect, type Socket } from 'node:net';
import { HeraldError } from '@herald/protocol';
import { TopConflictError } from '@herald/server';
import { LineWriter, lineReader, type FromPrimary, type WireError } from './wire.js';

interface Waiting {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export interface LinkHandlers {
  push(message: FromPrimary): void;
  lost(): void;
}

export class LocalLink {
  readonly #path: string;
  readonly #maxPending: number;
  readonly #waiting = new Map<number, Waiting>();
  #socket: Socket | undefined;
  #out: LineWriter | undefined;
  #handlers: LinkHandlers[] = [];
  #nextId = 1;
  #lost = false;
  #opening: Promise<void> | undefined;

  constructor(path: string, maxPending = 10_000) {
    this.#path = path;
    this.#maxPending = maxPending;
  }

  get up(): boolean {
    return this.#socket !== undefined && !this.#lost;
  }

  /** Connects once; later calls share the first connection (broker, presence and revocations share one link). */
  open(handlers: LinkHandlers): Promise<void> {
    this.#handlers.push(handlers);
    this.#opening ??= new Promise<void>((resolve, reject) => {
      const socket = connect(this.#path);
      socket.setNoDelay(true);
      socket.once('connect', () => {
        this.#socket = socket;
        // Requests leave as soon as the task that made them is done (see `Gather`).
        this.#out = new LineWriter(socket, 'task');
        resolve();
      });
      socket.on('error', (error) => {
        if (this.#socket === undefined)
          reject(new Error(`cannot reach the local broker at ${this.#path}: ${error.message}`));
      });
      socket.on(
        'data',
        lineReader(
          (message) => this.#receive(message as FromPrimary),
          () => socket.destroy(),
        ),
      );
      socket.on('close', () => this.#fail());
    });
    return this.#opening;
  }

  call<T>(op: string, ...args: unknown[]): Promise<T> {
    const out = this.#out;
    if (out === undefined || this.#lost) {
      return Promise.reject(
        new HeraldError('broker_unavailable', 'the local broker is not connected', { retryAfterSeconds: 1 }),
      );
    }
    if (this.#waiting.size >= this.#maxPending) {
      return Promise.reject(
        new HeraldError('rate_limited', `the local broker has ${this.#maxPending} requests waiting; nothing was done`, {
          retryAfterSeconds: 1,
        }),
      );
    }
    const i = this.#nextId++;
    out.send({ i, o: op, a: args });
    return new Promise<T>((resolve, reject) =>
      this.#waiting.set(i, { resolve: resolve as (v: unknown) => void, reject }),
    );
  }

  close(): void {
    this.#out?.flush();
    this.#socket?.end();
    this.#fail();
  }

  #receive(message: FromPrimary): void {
    if ('i' in message) {
      const waiting = this.#waiting.get(message.i);
      if (waiting === undefined) return;
      this.#waiting.delete(message.i);
      if ('e' in message) waiting.reject(toError(message.e));
      else waiting.resolve(message.r);
      return;
    }
    for (const h of this.#handlers) h.push(message);
  }

  #fail(): void {
    if (this.#lost) return;
    this.#lost = true;
    const error = new HeraldError('broker_unavailable', 'the local broker went away', { retryAfterSeconds: 1 });
    for (const waiting of this.#waiting.values()) waiting.reject(error);
    this.#waiting.clear();
    for (const h of this.#handlers) h.lost();
  }
}

function toError(e: WireError): Error {
  return e.kind === 'top' ? new TopConflictError(e.channel ?? '') : new Error(e.message);
}
