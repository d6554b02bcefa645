/**
 * NATS ingress: subjects (with `*`/`>`) onto channels.
 *
 * With `stream` (JetStream): one durable pull consumer per route (filtered on the route's subject,
 * which works on every JetStream server), explicit acks sent after the hub stored the
 * publication, a negative ack with a delay when the hub is unavailable. Identity: the producer's
 * `Nats-Msg-Id` header when present (it also survives a re-publish into the stream), else the
 * stream name and sequence, so a redelivery (lost ack, bridge restart, consumer replay) is
 * published once within the hub's 5-minute idempotency window.
 *
 * Without `stream` (core NATS): plain subscriptions, at most once (core NATS never redelivers);
 * `Nats-Msg-Id` is still used as identity when the producer sets it.
 */
import { createHash } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  connect,
  nanos,
  type ConsumerMessages,
  type JsMsg,
  type Msg,
  type NatsConnection,
  type Subscription,
} from 'nats';
import type { Hub } from '@herald/server';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { backoffDelay } from '../webhooks/backoff.js';
import { BridgeIngest, pause, type Bridge } from './ingest.js';
import { compileRoute, natsPattern, type CompiledRoute, type Decoding } from './mapping.js';

export interface NatsRouteOptions {
  readonly subject: string;
  readonly channel: string;
  readonly event?: string;
  readonly decode?: Decoding;
}

export interface NatsBridgeOptions {
  readonly name: string;
  readonly url: string;
  /** JetStream stream holding the subjects; absent = core NATS (at most once). */
  readonly stream?: string;
  /** Durable consumer name prefix. Default `herald-<name>`. */
  readonly durable?: string;
  /** Where a consumer created now starts: new messages (default) or the whole stream. */
  readonly deliver?: 'new' | 'all';
  /** Seconds JetStream waits for an ack before redelivering. Default 30. */
  readonly ackWaitSeconds?: number;
  readonly routes: readonly NatsRouteOptions[];
}

export function compileNatsRoutes(routes: readonly NatsRouteOptions[]): CompiledRoute[] {
  return routes.map((r) => compileRoute(natsPattern(r.subject), r, 'subject'));
}

export class NatsBridge implements Bridge {
  readonly type = 'nats';
  readonly name: string;
  readonly #options: NatsBridgeOptions;
  readonly #routes: CompiledRoute[];
  readonly #ingest: BridgeIngest;
  readonly #logger: Logger;
  readonly #stop = new AbortController();
  readonly #loops: Array<Promise<void>> = [];
  readonly #consumers: ConsumerMessages[] = [];
  readonly #subscriptions: Subscription[] = [];
  #nc: NatsConnection | undefined;

  constructor(options: NatsBridgeOptions, hub: Hub, logger: Logger, messages: Counter<'bridge' | 'result'>) {
    this.name = options.name;
    this.#options = options;
    this.#routes = compileNatsRoutes(options.routes);
    this.#logger = logger.child({ bridge: options.name });
    this.#ingest = new BridgeIngest(hub, options.name, this.#logger, messages);
  }

  /** The durable consumer of a route: named after its subject, so reordering routes keeps positions. */
  durableName(subject: string): string {
    const prefix = this.#options.durable ?? `herald-${this.name}`;
    return `${prefix}-${createHash('sha256').update(subject).digest('hex').slice(0, 12)}`;
  }

  async start(): Promise<void> {
    const nc = await connect({ servers: this.#options.url.split(','), name: `herald-bridge-${this.name}` });
    this.#nc = nc;
    const stream = this.#options.stream;
    if (stream === undefined) {
      for (const route of this.#routes) {
        const sub = nc.subscribe(route.address.pattern);
        this.#subscriptions.push(sub);
        this.#loops.push(this.#runCore(route, sub));
      }
      return;
    }
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    for (const route of this.#routes) {
      const durable = this.durableName(route.address.pattern);
      const config = {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: this.#options.deliver === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
        filter_subject: route.address.pattern,
        ack_wait: nanos((this.#options.ackWaitSeconds ?? 30) * 1000),
        max_ack_pending: 1000,
      };
      const exists = await jsm.consumers.info(stream, durable).then(
        () => true,
        () => false,
      );
      // An existing consumer keeps its position; only settings that may change are updated.
      if (exists) await jsm.consumers.update(stream, durable, { ack_wait: config.ack_wait });
      else await jsm.consumers.add(stream, config);
      const consumer = await js.consumers.get(stream, durable);
      const messages = await consumer.consume({ max_messages: 100 });
      this.#consumers.push(messages);
      this.#loops.push(this.#runJetStream(route, stream, messages));
    }
  }

  async close(): Promise<void> {
    this.#stop.abort();
    for (const messages of this.#consumers) await messages.close().catch(() => undefined);
    for (const sub of this.#subscriptions) sub.unsubscribe();
    await Promise.allSettled(this.#loops);
    await this.#nc?.drain().catch(() => undefined);
  }

  async #runJetStream(route: CompiledRoute, stream: string, messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      if (this.#stop.signal.aborted) break;
      const captures = route.address.match(m.subject);
      if (captures === undefined) {
        m.ack();
        continue;
      }
      const msgId = m.headers?.get('Nats-Msg-Id');
      const identity = msgId !== undefined && msgId !== '' ? `id:${msgId}` : `seq:${stream}:${m.seq}`;
      await this.#publishJs(m, route, captures, identity);
    }
  }

  async #publishJs(m: JsMsg, route: CompiledRoute, captures: readonly string[], identity: string): Promise<void> {
    try {
      await this.#ingest.ingest({
        route,
        vars: { captures, named: { subject: m.subject } },
        payload: m.data,
        identity,
      });
      m.ack();
    } catch (error) {
      const delay = backoffDelay(m.info.redeliveryCount, 500, 30_000);
      this.#logger.warn({ err: error, subject: m.subject, delay }, 'nats bridge could not publish; redelivery later');
      m.nak(delay);
    }
  }

  async #runCore(route: CompiledRoute, sub: Subscription): Promise<void> {
    for await (const m of sub) await this.#publishCore(route, m);
  }

  async #publishCore(route: CompiledRoute, m: Msg): Promise<void> {
    const captures = route.address.match(m.subject);
    if (captures === undefined) return;
    const msgId = m.headers?.get('Nats-Msg-Id');
    const message = {
      route,
      vars: { captures, named: { subject: m.subject } },
      payload: m.data,
      identity: msgId !== undefined && msgId !== '' ? `id:${msgId}` : undefined,
    };
    // Core NATS will not redeliver: retry here for a while before giving the message up.
    for (let attempt = 1; attempt <= 5 && !this.#stop.signal.aborted; attempt++) {
      try {
        await this.#ingest.ingest(message);
        return;
      } catch (error) {
        this.#logger.warn({ err: error, subject: m.subject, attempt }, 'nats bridge could not publish; retrying');
        await pause(backoffDelay(attempt, 200, 5_000), this.#stop.signal);
      }
    }
  }
}
