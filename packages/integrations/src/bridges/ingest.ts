/**
 * The part every bridge shares: a mapped message becomes one hub publish with an idempotency key
 * derived from the message's stable identity, so a message delivered twice (a redelivery after a
 * restart or a lost ack) is published once, as long as the repeat comes within the hub's
 * idempotency window (5 minutes, PROTOCOL.md section 4).
 *
 * Outcome contract for the bridges: `published` (stored now, or a repeat the hub had already
 * stored: the metric tells the two apart) and `invalid` may be acknowledged to the source
 * (an invalid message never becomes valid: it is counted, logged and dropped); a thrown error is
 * transient (the hub or its broker is unavailable) and the message must NOT be acknowledged, so
 * the source delivers it again.
 */
import { createHash } from 'node:crypto';
import { HeraldError } from '@herald/protocol';
import type { Hub } from '@herald/server';
import type { Logger } from 'pino';
import type { Counter, Registry } from 'prom-client';
import { counter } from '../metrics.js';
import { decodePayload, resolveTarget, type CompiledRoute, type TemplateVars } from './mapping.js';

export interface BridgeMessage {
  readonly route: CompiledRoute;
  readonly vars: TemplateVars;
  readonly payload: Uint8Array;
  /** The message's stable identity (stream id, sequence, producer id, content hash); undefined = none. */
  readonly identity: string | undefined;
}

export type IngestOutcome = 'published' | 'invalid';

export interface Bridge {
  readonly name: string;
  readonly type: 'mqtt' | 'nats' | 'redis-stream';
  start(): Promise<void>;
  /** Stops taking messages and waits for the one in progress; unacknowledged ones are redelivered later. */
  close(): Promise<void>;
}

/** Errors that will not go away by trying again: the message is dropped. */
const PERMANENT = new Set(['bad_request', 'bad_channel', 'too_large', 'forbidden', 'reserved_event']);

const counters = new WeakMap<Registry, Counter<'bridge' | 'result'>>();

/** `herald_bridge_messages_total`, one per registry (bridges share it, labelled by name). */
export function bridgeCounter(registry: Registry | undefined): Counter<'bridge' | 'result'> {
  const make = () =>
    counter(registry, 'herald_bridge_messages_total', 'Messages taken by ingress bridges, by result.', [
      'bridge',
      'result',
    ]);
  if (registry === undefined) return make();
  let c = counters.get(registry);
  if (c === undefined) counters.set(registry, (c = make()));
  return c;
}

export class BridgeIngest {
  readonly bridge: string;
  readonly #hub: Hub;
  readonly #logger: Logger;
  readonly #messages: Counter<'bridge' | 'result'>;

  constructor(hub: Hub, bridge: string, logger: Logger, messages: Counter<'bridge' | 'result'>) {
    this.#hub = hub;
    this.bridge = bridge;
    this.#logger = logger;
    this.#messages = messages;
  }

  /** The idempotency key of an identity: `<bridge>:<base64url SHA-256>`, within the hub's 200 characters. */
  idempotencyKey(identity: string): string {
    return `${this.bridge}:${createHash('sha256').update(identity).digest('base64url')}`;
  }

  async ingest(message: BridgeMessage): Promise<IngestOutcome> {
    const target = resolveTarget(message.route, message.vars);
    if ('error' in target) return this.#invalid(target.error);
    const decoded = decodePayload(message.payload, message.route.decode);
    if ('error' in decoded) return this.#invalid(decoded.error, target.channel);
    const outcome = { duplicate: false };
    try {
      await this.#hub.publish(
        {
          channel: target.channel,
          data: decoded.data,
          ...(target.event === undefined ? {} : { event: target.event }),
          ...(message.identity === undefined ? {} : { idempotencyKey: this.idempotencyKey(message.identity) }),
        },
        undefined,
        outcome,
      );
    } catch (error) {
      if (error instanceof HeraldError && PERMANENT.has(error.code)) {
        return this.#invalid(`${error.code}: ${error.message}`, target.channel);
      }
      this.#messages.inc({ bridge: this.bridge, result: 'retry' });
      throw error;
    }
    // A redelivery the hub recognised by its idempotency key stored nothing: counted apart.
    this.#messages.inc({ bridge: this.bridge, result: outcome.duplicate ? 'duplicate' : 'published' });
    return 'published';
  }

  #invalid(reason: string, channel?: string): IngestOutcome {
    this.#messages.inc({ bridge: this.bridge, result: 'invalid' });
    this.#logger.warn({ bridge: this.bridge, channel, reason }, 'bridge dropped a message it cannot publish');
    return 'invalid';
  }
}

/** Waits `ms`, or less when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
