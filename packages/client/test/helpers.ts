/** Shared by the client tests: clients with test-sized timings, a recorder, the exactly-once check. */
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Herald, type ClientState, type HeraldOptions, type Subscription, type TransportName } from '@herald/client';
import { API_KEY, type HubAddress } from '../../../test/support/hub.ts';

export const TRANSPORTS: readonly TransportName[] = ['websocket', 'sse', 'poll'];

/** Small delays: the machine is shared, so deadlines are generous and backoff is short. */
export const FAST: HeraldOptions = {
  minReconnectDelayMs: 20,
  maxReconnectDelayMs: 400,
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 20_000,
  pollTimeoutSeconds: 5,
};

const open = new Set<Herald>();

/** A client with `ws` as its WebSocket (Node.js 20 has none built in). Closed by `closeClients`. */
export function newClient(url: string, options: HeraldOptions = {}): Herald {
  const client = new Herald(url, { WebSocket, ...FAST, ...options });
  open.add(client);
  return client;
}

export function closeClients(): void {
  for (const client of open) client.close();
  open.clear();
}

export function states(client: Herald): ClientState[] {
  const seen: ClientState[] = [];
  client.on('state', (s) => seen.push(s));
  return seen;
}

export type Entry =
  { kind: 'pub'; offset: number; epoch: string; data: any } | { kind: 'recovered'; recovered: boolean; epoch: string };

export function record(sub: Subscription): Entry[] {
  const log: Entry[] = [];
  sub.on('publication', (p) => log.push({ kind: 'pub', offset: p.offset ?? 0, epoch: p.epoch ?? '', data: p.data }));
  sub.on('recovered', (r) => log.push({ kind: 'recovered', recovered: r.recovered, epoch: r.position.epoch }));
  return log;
}

export const pubs = (log: Entry[]) => log.filter((e) => e.kind === 'pub');

/**
 * The delivery guarantee as the app sees it: each publication follows the previous one directly
 * (same epoch, next offset), except right after a `recovered: false`, and no position twice.
 */
export function assertExactlyOnceInOrder(log: Entry[]): void {
  let last: { offset: number; epoch: string } | undefined;
  let reset = true;
  const seen = new Set<string>();
  for (const [i, entry] of log.entries()) {
    if (entry.kind === 'recovered') {
      if (!entry.recovered) reset = true;
      continue;
    }
    const key = `${entry.epoch}/${entry.offset}`;
    assert.ok(!seen.has(key), `duplicate publication ${key} at ${i}`);
    seen.add(key);
    if (!reset && last !== undefined) {
      assert.equal(entry.epoch, last.epoch, `epoch changed without recovered: false at ${i}`);
      assert.equal(entry.offset, last.offset + 1, `gap or reorder at ${i}: ${last.offset} -> ${entry.offset}`);
    }
    last = entry;
    reset = false;
  }
}

/**
 * Publishes `{seq}` to `channel` through the server API until stopped, riding out a hub restart
 * (a failed publish is tried again after a pause). `acked` holds every acknowledged position.
 */
export function publisher(target: () => HubAddress, channel: string, pauseMs = 15) {
  const acked: { seq: number; offset: number; epoch: string }[] = [];
  let running = true;
  let seq = 0;
  const done = (async () => {
    while (running) {
      try {
        const res = await fetch(`${target().url}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel, data: { seq }, idempotencyKey: `seq-${seq}` }),
        });
        if (res.ok) {
          const { offset, epoch } = (await res.json()) as { offset: number; epoch: string };
          acked.push({ seq, offset, epoch });
          seq++;
        } else await res.body?.cancel();
      } catch {
        // the hub is restarting: try again
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    acked,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
