/**
 * Request/reply between the nodes of one backend, for brokers that carry it over pub/sub (Redis,
 * NATS). The asking node sends `{id, from, message}` to every node and each node sends its answer
 * back to the asker alone; `NodeRequests` matches the answers to the request by id. The broker
 * says how many nodes were asked (Redis: the receivers PUBLISH counted; NATS: the roster of live
 * nodes), so a request resolves as soon as the last answer arrives, and at the timeout otherwise.
 */
import { randomUUID } from 'node:crypto';
import type { BrokerEvents, NodeReplies, NodeRequest } from './broker.js';

/** A request as it travels to every node. */
export interface RequestEnvelope {
  readonly id: string;
  /** The asking node's id: where the answer goes. */
  readonly from: string;
  readonly message: NodeRequest;
}

/** An answer as it travels back. */
export interface AnswerEnvelope {
  readonly id: string;
  readonly answer: unknown;
}

interface Pending {
  readonly answers: unknown[];
  expected: number;
  readonly resolve: (replies: NodeReplies) => void;
  readonly timer: NodeJS.Timeout;
}

export class NodeRequests {
  /** This node's id on the backend: requests name it so that answers come back here. */
  readonly nodeId = randomUUID();
  readonly #pending = new Map<string, Pending>();

  /**
   * Starts a request: `send` delivers the envelope to every node and resolves with how many nodes
   * it reached (this one included), or undefined when it cannot know yet (see `expect`).
   */
  async ask(
    message: NodeRequest,
    timeoutMs: number,
    send: (envelope: RequestEnvelope) => Promise<number | undefined>,
  ): Promise<NodeReplies> {
    const id = randomUUID();
    const done = new Promise<NodeReplies>((resolve) => {
      const timer = setTimeout(() => this.#finish(id), timeoutMs);
      timer.unref();
      this.#pending.set(id, { answers: [], expected: Number.POSITIVE_INFINITY, resolve, timer });
    });
    try {
      const reached = await send({ id, from: this.nodeId, message });
      if (reached !== undefined) this.expect(id, reached);
    } catch (error) {
      const pending = this.#pending.get(id);
      if (pending !== undefined) clearTimeout(pending.timer);
      this.#pending.delete(id);
      throw error;
    }
    return done;
  }

  /** Sets how many answers request `id` waits for. */
  expect(id: string, count: number): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    pending.expected = count;
    if (pending.answers.length >= count) this.#finish(id);
  }

  /** An answer arrived for one of this node's requests (late ones, after the timeout, are dropped). */
  answered(envelope: AnswerEnvelope): void {
    const pending = this.#pending.get(envelope.id);
    if (pending === undefined) return;
    pending.answers.push(envelope.answer);
    if (pending.answers.length >= pending.expected) this.#finish(envelope.id);
  }

  /** Rejects nothing: every request still waiting resolves with what it has (the broker closes). */
  close(): void {
    for (const id of [...this.#pending.keys()]) this.#finish(id);
  }

  #finish(id: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    const expected = Number.isFinite(pending.expected) ? pending.expected : pending.answers.length;
    pending.resolve({ answers: pending.answers, missing: Math.max(0, expected - pending.answers.length) });
  }
}

/** This node's answer to a request: the hub's, or `null` without a handler or when it failed. */
export async function answerRequest(events: BrokerEvents | undefined, message: NodeRequest): Promise<unknown> {
  if (events?.request === undefined) return null;
  try {
    return (await events.request(message)) ?? null;
  } catch {
    return null;
  }
}
