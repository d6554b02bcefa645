/**
 * MQTT ingress: topics (with `+`/`#`) from an MQTT broker onto channels.
 *
 * At-least-once: QoS 1 subscriptions on a persistent session (fixed client id, clean start off,
 * a session expiry on MQTT 5), and the PUBACK for a message goes out only after the hub stored
 * its publication (mqtt.js `handleMessage`), so the broker keeps and re-sends whatever the bridge
 * had not finished, across bridge restarts. Messages are handled one at a time, in order.
 *
 * Identity (for the idempotency key), because MQTT packet ids are not one (they are per hop and
 * reused): by default topic + payload, so an exact repeat within 5 minutes is published once (a
 * sensor sending the very same bytes twice in that window is published once too: put a timestamp
 * or id in the payload). Or a JSON field of the payload, or an MQTT 5 user property set by the
 * producer, or none.
 */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Hub } from '@herald/server';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { BridgeIngest, pause, type Bridge } from './ingest.js';
import { compileRoute, mqttPattern, type CompiledRoute, type Decoding } from './mapping.js';
import { backoffDelay } from '../webhooks/backoff.js';

export type MqttIdentity = 'payload' | 'none' | { readonly jsonField: string } | { readonly userProperty: string };

export interface MqttRouteOptions {
  readonly topic: string;
  readonly channel: string;
  readonly event?: string;
  readonly decode?: Decoding;
}

export interface MqttBridgeOptions {
  readonly name: string;
  readonly url: string;
  /** Fixed, so the broker keeps the session (and what the bridge has not acknowledged) across restarts. */
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  /** 1 (default) for at-least-once; 0 for fire-and-forget. */
  readonly qos?: 0 | 1;
  readonly protocolVersion?: 4 | 5;
  /** MQTT 5: seconds the broker keeps the session while the bridge is away. Default 86400. */
  readonly sessionExpirySeconds?: number;
  /** Take retained messages at subscribe time. Default false: they are old state, re-sent on every restart. */
  readonly retained?: boolean;
  readonly identity?: MqttIdentity;
  readonly routes: readonly MqttRouteOptions[];
}

export function compileMqttRoutes(routes: readonly MqttRouteOptions[]): CompiledRoute[] {
  return routes.map((r) => compileRoute(mqttPattern(r.topic), r, 'topic'));
}

export class MqttBridge implements Bridge {
  readonly type = 'mqtt';
  readonly name: string;
  readonly #options: MqttBridgeOptions;
  readonly #routes: CompiledRoute[];
  readonly #ingest: BridgeIngest;
  readonly #logger: Logger;
  readonly #stop = new AbortController();
  #client: MqttClient | undefined;

  constructor(options: MqttBridgeOptions, hub: Hub, logger: Logger, messages: Counter<'bridge' | 'result'>) {
    this.name = options.name;
    this.#options = options;
    this.#routes = compileMqttRoutes(options.routes);
    this.#logger = logger.child({ bridge: options.name });
    this.#ingest = new BridgeIngest(hub, options.name, this.#logger, messages);
  }

  async start(): Promise<void> {
    const o = this.#options;
    const version = o.protocolVersion ?? 5;
    const options: IClientOptions = {
      clientId: o.clientId,
      clean: false,
      protocolVersion: version,
      reconnectPeriod: 1000,
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
      ...(version === 5 ? { properties: { sessionExpiryInterval: o.sessionExpirySeconds ?? 86_400 } } : {}),
    };
    const client = mqtt.connect(o.url, options);
    this.#client = client;
    // Set before the connection is up: a resumed session's queued messages follow the CONNACK at
    // once, and any that reached the default handler would be acknowledged without being published.
    client.handleMessage = (packet, done) => {
      this.#handle(packet).then(
        (ack) => {
          if (ack) done();
        },
        (error: unknown) => done(error as Error),
      );
    };
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => {
        clearTimeout(timer);
        client.end(true);
        reject(error);
      };
      const timer = setTimeout(() => fail(new Error(`MQTT broker ${o.url} did not answer within 10 s`)), 10_000);
      client.once('error', fail);
      client.once('connect', () => {
        clearTimeout(timer);
        client.off('error', fail);
        resolve();
      });
    });
    client.on('error', (error) => this.#logger.warn({ err: error }, 'mqtt bridge connection error'));
    const qos = o.qos ?? 1;
    // Retain handling 2 (MQTT 5): the broker does not send retained messages at all.
    const rh = o.retained === true ? 0 : 2;
    await client.subscribeAsync(
      Object.fromEntries(this.#routes.map((r) => [r.address.pattern, version === 5 ? { qos, rh } : { qos }])),
    );
  }

  async close(): Promise<void> {
    this.#stop.abort();
    await this.#client?.endAsync(true).catch(() => undefined);
  }

  /** Resolves true when the message may be acknowledged, false when closing (leave it to the broker). */
  async #handle(packet: IPublishPacket): Promise<boolean> {
    const topic = packet.topic;
    if (packet.retain && this.#options.retained !== true) return true;
    let captures: readonly string[] | undefined;
    const route = this.#routes.find((r) => (captures = r.address.match(topic)) !== undefined);
    if (route === undefined || captures === undefined) return true;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const message = {
      route,
      vars: { captures, named: { topic } },
      payload,
      identity: this.#identity(packet, topic, payload),
    };
    for (let attempt = 1; !this.#stop.signal.aborted; attempt++) {
      try {
        await this.#ingest.ingest(message);
        return true;
      } catch (error) {
        this.#logger.warn({ err: error, topic, attempt }, 'mqtt bridge could not publish; retrying');
        await pause(backoffDelay(attempt, 200, 10_000), this.#stop.signal);
      }
    }
    return false;
  }

  #identity(packet: IPublishPacket, topic: string, payload: Buffer): string | undefined {
    const identity = this.#options.identity ?? 'payload';
    const byPayload = `${topic}\0${payload.toString('base64')}`;
    if (identity === 'none') return undefined;
    if (identity === 'payload') return byPayload;
    if ('userProperty' in identity) {
      const value = packet.properties?.userProperties?.[identity.userProperty];
      const first = Array.isArray(value) ? value[0] : value;
      return first === undefined ? byPayload : `${topic}\0p:${first}`;
    }
    try {
      const field = (JSON.parse(payload.toString('utf8')) as Record<string, unknown>)[identity.jsonField];
      if (typeof field === 'string' || typeof field === 'number') return `${topic}\0f:${field}`;
    } catch {
      // not JSON: fall back to the content
    }
    return byPayload;
  }
}
