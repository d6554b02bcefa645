/**
 * Test support for text streams (docs/streams.md): a reader that rebuilds each stream's text from
 * what a client received, as the SDK does, and checks the coverage rule (every offset after the
 * reader's start exactly once, in order); a publisher that streams tokens through the server API;
 * hubs on the memory broker, Redis and NATS with Socket.IO attached.
 */
import assert from 'node:assert/strict';
import { HeraldServer, type HeraldOptions } from '@herald/server';
import { attachSocketIo } from '@herald/transport-socketio';
import { API_KEY, JWT_SECRET, api, listening, sleep, type TestHub } from '../support/hub.ts';
import { deleteNatsNamespace } from '../support/nats.ts';
import { REDIS_URL, deleteRedisPrefix, testPrefix } from '../support/redis.ts';

export type BrokerKind = 'memory' | 'redis' | 'nats';
export const NATS_URL = 'nats://127.0.0.1:4222';

/** A hub with Socket.IO on `kind`; `cleanup` removes its Redis keys or NATS streams. */
export async function startStreamHub(
  kind: BrokerKind,
  options: Partial<HeraldOptions> = {},
): Promise<TestHub & { cleanup(): Promise<void> }> {
  const prefix = testPrefix().replace(/-/g, '_');
  const history = { size: 1000, ttlSeconds: 600 };
  const backend =
    kind === 'redis'
      ? await (await import('@herald/broker-redis')).createRedisBackend({ url: REDIS_URL, history, prefix })
      : kind === 'nats'
        ? await (await import('@herald/broker-nats')).createNatsBackend({ url: NATS_URL, history, prefix })
        : {};
  const server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, sseRetryMs: 50, ...backend, ...options });
  attachSocketIo(server);
  return {
    ...(await listening(server)),
    cleanup: async () => {
      if (kind === 'redis') await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
      if (kind === 'nats') await deleteNatsNamespace(NATS_URL, prefix).catch(() => undefined);
    },
  };
}

/**
 * Rebuilds text streams from the publications one client received, in arrival order, and records
 * the offsets each publication covers (`append.from`, or a rolled-up stream's id, to its offset).
 */
export class StreamReader {
  readonly texts = new Map<number, string>();
  readonly statuses = new Map<number, string>();
  /** Publications of streams, in arrival order. */
  readonly items: any[] = [];
  /** `[from, to]` per publication received, in arrival order. */
  readonly covered: Array<[number, number]> = [];
  /** Appends to a stream this reader never saw open (there should be none). */
  strays = 0;

  take(pub: any): void {
    if (typeof pub?.offset !== 'number') return;
    if (pub.stream !== undefined) {
      const id: number = pub.stream.id ?? pub.offset;
      this.texts.set(id, pub.data);
      this.statuses.set(id, pub.stream.status);
      this.covered.push([pub.stream.rolledUp === true ? id : pub.offset, pub.offset]);
      this.items.push(pub);
    } else if (pub.append !== undefined) {
      const to: number = pub.append.to;
      const text = this.texts.get(to);
      if (text === undefined) this.strays++;
      else if (this.statuses.get(to) === 'open') {
        this.texts.set(to, text + pub.data);
        if (pub.append.status !== undefined) this.statuses.set(to, pub.append.status);
      }
      this.covered.push([pub.append.from ?? pub.offset, pub.offset]);
      this.items.push(pub);
    } else {
      this.covered.push([pub.offset, pub.offset]);
    }
  }

  /** Every offset from `first` on, exactly once and in order, through `last`. */
  assertCoverage(first: number, last: number, who: string): void {
    let next = first;
    for (const [from, to] of this.covered) {
      assert.equal(from, next, `${who}: ${JSON.stringify(this.covered)} continues at ${next}`);
      assert.ok(to >= from, `${who}: ${from}..${to}`);
      next = to + 1;
    }
    assert.equal(next - 1, last, `${who}: reaches ${last}`);
  }
}

export interface StreamedAnswer {
  readonly id: number;
  readonly text: string;
  readonly last: number;
  /** ms from the first append's acknowledgement to the close's. */
  readonly elapsedMs: number;
}

/**
 * Opens a stream on `channel`, appends `tokens` one at a time every `everyMs` (each with an
 * idempotency key, as a retrying producer would), calling `at(i)` before each, then closes it.
 */
export async function streamTokens(
  hub: { url: string },
  channel: string,
  tokens: readonly string[],
  everyMs: number,
  at: (i: number) => Promise<void> | void = () => undefined,
): Promise<StreamedAnswer> {
  const opened = await api(hub as TestHub, 'POST', '/api/publish', { channel, data: '', stream: { status: 'open' } });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  const id: number = opened.body.offset;
  let start = 0;
  for (let i = 0; i < tokens.length; i++) {
    await at(i);
    const body = { channel, data: tokens[i], append: { to: id }, idempotencyKey: `${id}-${i}` };
    const answer = await api(hub as TestHub, 'POST', '/api/publish', body);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    if (i === 0) start = Date.now();
    if (everyMs > 0) await sleep(everyMs);
  }
  const closed = await api(hub as TestHub, 'POST', '/api/publish', {
    channel,
    data: '',
    append: { to: id, status: 'done' },
  });
  assert.equal(closed.status, 200, JSON.stringify(closed.body));
  return { id, text: tokens.join(''), last: closed.body.offset, elapsedMs: Date.now() - start };
}

export const tokensOf = (count: number): string[] => Array.from({ length: count }, (_, i) => `t${i} `);
