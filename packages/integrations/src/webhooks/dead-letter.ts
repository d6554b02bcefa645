/**
 * The dead-letter log: events that could not be delivered, one JSON object per line, appended in
 * order. Replaying is an operator's decision (each line has the full body; see docs/integrations.md).
 */
import { appendFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { OutgoingEvent } from './events.js';

/** `outbox_unavailable`: the shared outbox (Redis, NATS) could not store the event when it was created. */
export type DeadLetterReason = 'attempts_exhausted' | 'rejected' | 'queue_full' | 'shutdown' | 'outbox_unavailable';

export interface DeadLetter {
  readonly event: OutgoingEvent;
  readonly reason: DeadLetterReason;
  readonly lastError?: string;
  readonly lastStatus?: number;
}

export class DeadLetterLog {
  readonly path: string | undefined;
  readonly #logger: Logger;
  #tail: Promise<void> = Promise.resolve();

  /** Without a path, dead letters are only logged (at warn level, with the event id and type). */
  constructor(path: string | undefined, logger: Logger) {
    this.path = path;
    this.#logger = logger;
  }

  write(letter: DeadLetter): void {
    const { event } = letter;
    this.#logger.warn(
      { eventId: event.id, type: event.type, reason: letter.reason, attempts: event.attempts },
      'webhook dead-lettered',
    );
    const path = this.path;
    if (path === undefined) return;
    const line =
      `{"deadAt":${Date.now()},"reason":"${letter.reason}","attempts":${event.attempts}` +
      (letter.lastStatus === undefined ? '' : `,"lastStatus":${letter.lastStatus}`) +
      (letter.lastError === undefined ? '' : `,"lastError":${JSON.stringify(letter.lastError)}`) +
      `,"event":${event.body}}\n`;
    this.#tail = this.#tail
      .then(() => appendFile(path, line))
      .catch((error: unknown) => this.#logger.error({ err: error, path }, 'cannot write the dead-letter log'));
  }

  /** Resolves once every line written so far is on disk. */
  flush(): Promise<void> {
    return this.#tail;
  }
}
