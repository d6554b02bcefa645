/**
 * The wire between hub workers and the primary that owns the machine's broker state: one JSON
 * object per line over a unix socket, in order both ways. Order is the contract everything else
 * leans on: a publication event the primary writes before a reply reaches the worker before that
 * reply, so "subscribed" really means "every later publication follows", and a publish's own
 * publication reaches its publisher's node before the acknowledgement, as with the memory broker.
 */
import { StringDecoder } from 'node:string_decoder';
import type { ControlMessage, NodeRequest, PublicationRecord, Revocation } from '@herald/server';

/** A request from a worker; `i` is the worker's id for the reply. */
export interface Request {
  readonly i: number;
  readonly o: string;
  readonly a: readonly unknown[];
}

/** Why a request failed: `top` is a compare-and-append conflict, everything else a plain error. */
export interface WireError {
  readonly kind: 'top' | 'error';
  readonly message: string;
  readonly channel?: string;
}

export type Reply = { readonly i: number; readonly r?: unknown } | { readonly i: number; readonly e: WireError };

/** Pushed by the primary, unasked: a publication, a control message, a revocation. */
export type Push =
  | { readonly p: PublicationRecord }
  | { readonly c: ControlMessage }
  | { readonly v: Revocation }
  /** A node request (`Broker.request`) for this worker to answer with the `answer` operation. */
  | { readonly q: { readonly id: number; readonly message: NodeRequest } };

export type FromPrimary = Reply | Push;

/**
 * Splits a byte stream into lines and parses each; a line that is not JSON ends the link (the
 * only writers are Herald's own processes, so it means a bug, not input to tolerate).
 */
export function lineReader(
  onMessage: (message: unknown) => void,
  onBad: (error: Error) => void,
): (chunk: Buffer) => void {
  let rest = '';
  // A read may end inside a multi-byte character (a publication's "é" split between two reads of
  // the socket): the decoder keeps the partial bytes for the next chunk instead of mangling them.
  const decoder = new StringDecoder('utf8');
  return (chunk) => {
    const text = rest + decoder.write(chunk);
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      const line = text.slice(start, end);
      start = end + 1;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch (error) {
        onBad(error as Error);
        return;
      }
      onMessage(message);
    }
    rest = text.slice(start);
  };
}

/**
 * When a writer's gathered lines leave: `turn`, at the end of the event-loop turn (the primary:
 * publications fanned out in a burst cost one syscall per worker, not one each); `task`, as soon
 * as the current callback and its microtasks are done (a worker: its publish requests must not wait
 * for the turn's end, where the worker writes to its thousands of subscriber sockets, or each
 * publish waits that long again before the primary sees it). Measured with
 * `node scripts/workers-cpu.mjs 4000 200 3 2`, three A/B pairs: `task` on the worker side took the
 * two workers from 4.10–4.38 to 3.41–3.63 µs of CPU per delivery, and delivered 15–30 % faster.
 */
export type Gather = 'turn' | 'task';

/**
 * Writes lines to a socket, gathered (see `Gather`) into one `write`. An idle link writes at the
 * end of the turn or task it was given something.
 */
export class LineWriter {
  readonly #socket: { write(data: string): boolean; readonly destroyed: boolean };
  readonly #schedule: (flush: () => void) => void;
  #pending: string[] = [];
  #scheduled = false;

  constructor(socket: { write(data: string): boolean; readonly destroyed: boolean }, gather: Gather = 'turn') {
    this.#socket = socket;
    this.#schedule = gather === 'turn' ? setImmediate : process.nextTick;
  }

  send(message: unknown): void {
    this.#pending.push(JSON.stringify(message));
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#schedule(() => this.flush());
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0 || this.#socket.destroyed) return;
    const text = this.#pending.join('\n') + '\n';
    this.#pending = [];
    this.#socket.write(text);
  }
}
