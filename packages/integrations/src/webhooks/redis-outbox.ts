/**
 * The webhook outbox on Redis: events survive the node that created them.
 *
 * Keys (under `prefix`, which carries a `{hash tag}` so a Redis Cluster keeps them in one slot):
 *   stream    STREAM of events due now, field `e` = the event as JSON (attempts included);
 *             consumer group `herald-webhooks`, one consumer per node process
 *   retries   ZSET event JSON -> when its retry is due (Redis TIME, ms)
 *
 * An event is in exactly one of: the stream, not yet read (ready); the stream and a consumer's
 * pending list (being sent by that node); the retries set (waiting). Every move between them is
 * one Lua script, so a crash at any point leaves each event in one place. Nodes read with
 * XREADGROUP only as many events as they have free request slots, so an entry stays pending for
 * one attempt at most (the request `timeout`); a failed attempt moves it to `retries`, where any
 * node promotes it back into the stream when due. An entry pending longer than `claimIdleMs`
 * belongs to a node that died (or stalled): XAUTOCLAIM gives it to another node, and its delivery
 * count tells how many attempts were interrupted.
 *
 * The bound is exact, not MAXLEN: trimming would remove the oldest entries silently, and the
 * oldest are the ones being sent. The append script removes the oldest ready entry (else the
 * oldest waiting retry) and returns it, so the appending node dead-letters it as `queue_full`.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { OutgoingEvent } from './events.js';
import type { Claim, Outbox } from './outbox.js';

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Pending count of the group, creating the group (and stream) if Redis lost them. */
const PENDING = `
local function pending(stream, group)
  local ok, summary = pcall(redis.call, 'XPENDING', stream, group)
  if ok then return summary[1] end
  redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  return 0
end`;

/**
 * KEYS: stream, retries. ARGV: group, capacity, entry. Returns the entries removed to make room.
 * Pending entries (being sent) do not count and are not removed unless nothing else is left
 * within the first 1000 (many dead nodes): then the oldest entry goes, acknowledged.
 */
const APPEND = `${PENDING}
local stream, retries, group, cap = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local held = pending(stream, group)
local size = redis.call('XLEN', stream) - held + redis.call('ZCARD', retries)
local dropped = {}
while size >= cap do
  local victim = nil
  local scan = math.min(held, 1000)
  if redis.call('XLEN', stream) > held then
    local sending = {}
    if held > 0 then
      for _, p in ipairs(redis.call('XPENDING', stream, group, '-', '+', scan)) do sending[p[1]] = true end
    end
    for _, e in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', scan + 1)) do
      if not sending[e[1]] then victim = e break end
    end
  end
  if victim == nil and redis.call('ZCARD', retries) > 0 then
    local oldest = redis.call('ZRANGE', retries, 0, 0)[1]
    redis.call('ZREM', retries, oldest)
    table.insert(dropped, oldest)
  else
    if victim == nil then
      victim = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
      if victim == nil then break end
      held = held - redis.call('XACK', stream, group, victim[1])
    end
    redis.call('XDEL', stream, victim[1])
    table.insert(dropped, victim[2][2])
  end
  size = size - 1
end
redis.call('XADD', stream, '*', 'e', ARGV[3])
return dropped`;

/** KEYS: stream, retries. ARGV: batch. Moves due retries into the stream. */
const PROMOTE = `${NOW}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, e in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'e', e)
  redis.call('ZREM', KEYS[2], e)
end
return #due`;

/** KEYS: stream. ARGV: group, entry id. Delivered or dead-lettered: gone. */
const ACK = `
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 0`;

/**
 * KEYS: stream, retries. ARGV: group, entry id, delay ms, entry (attempts updated). Only an entry
 * still pending is moved: one another node already acknowledged (it took the entry over while
 * this node stalled, and delivered it) is not brought back.
 */
const RETRY = `${NOW}
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
return 1`;

export interface RedisOutboxOptions {
  /** `redis://host:port/db`. */
  readonly url: string;
  /** Key prefix; keep a `{hash tag}` in it for Redis Cluster. */
  readonly prefix: string;
  readonly capacity: number;
  /** An entry held this long by one node is taken over by another (must exceed the request timeout). */
  readonly claimIdleMs: number;
  /** This process's consumer name in the group. Default a random id. */
  readonly consumer?: string;
}

type Script = 'append' | 'promote' | 'ack' | 'retry';
type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;
type StreamEntry = [id: string, fields: string[] | null];

const GROUP = 'herald-webhooks';
/** Consumers of processes gone this long with nothing pending are removed from the group at start. */
const STALE_CONSUMER_MS = 3_600_000;

export class RedisOutbox implements Outbox {
  readonly name = 'redis';
  readonly durable = true;
  readonly consumer: string;
  readonly #o: RedisOutboxOptions;
  readonly #redis: Redis;
  /** Blocking reads have their own connection, so acks never wait behind them. */
  readonly #reader: Redis;
  readonly #stream: string;
  readonly #retries: string;
  #cursor = '0-0';
  #nextReclaim = 0;

  constructor(options: RedisOutboxOptions) {
    this.#o = options;
    this.consumer = options.consumer ?? randomUUID();
    this.#stream = `${options.prefix}stream`;
    this.#retries = `${options.prefix}retries`;
    this.#redis = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.#reader = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    for (const r of [this.#redis, this.#reader]) r.on('error', () => undefined); // reconnects; calls reject
    const scripts: Record<Script, [string, number]> = {
      append: [APPEND, 2],
      promote: [PROMOTE, 2],
      ack: [ACK, 1],
      retry: [RETRY, 2],
    };
    for (const [name, [lua, numberOfKeys]] of Object.entries(scripts)) {
      this.#redis.defineCommand(name, { numberOfKeys, lua });
    }
  }

  #call(script: Script, ...args: Array<string | number>): Promise<unknown> {
    return (this.#redis as unknown as Record<Script, ScriptFn>)[script](...args);
  }

  async start(): Promise<void> {
    await Promise.all([this.#redis.connect(), this.#reader.connect()]);
    await this.#ensureGroup();
    const consumers = (await this.#redis.xinfo('CONSUMERS', this.#stream, GROUP)) as unknown[][];
    for (const fields of consumers) {
      const info = Object.fromEntries(
        Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]),
      );
      if (info.pending === 0 && Number(info.idle) > STALE_CONSUMER_MS) {
        await this.#redis.xgroup('DELCONSUMER', this.#stream, GROUP, String(info.name));
      }
    }
  }

  async #ensureGroup(): Promise<void> {
    await this.#redis.xgroup('CREATE', this.#stream, GROUP, '0', 'MKSTREAM').catch((error: Error) => {
      if (!error.message.includes('BUSYGROUP')) throw error;
    });
  }

  async append(event: OutgoingEvent): Promise<OutgoingEvent[]> {
    const dropped = (await this.#call(
      'append',
      this.#stream,
      this.#retries,
      GROUP,
      this.#o.capacity,
      encode(event),
    )) as string[];
    return dropped.map(decode);
  }

  async *claim(max: number, waitMs: number, signal: AbortSignal): AsyncIterable<Claim> {
    let claims: Claim[];
    try {
      await this.#call('promote', this.#stream, this.#retries, 1000);
      claims = Date.now() >= this.#nextReclaim ? await this.#reclaim(max) : [];
      if (claims.length < max && !signal.aborted) claims.push(...(await this.#read(max - claims.length, waitMs)));
    } catch (error) {
      // The stream or group is gone (a Redis that restarted empty, a FLUSHALL): create them again.
      if ((error as Error).message.includes('NOGROUP')) await this.#ensureGroup();
      throw error;
    }
    yield* claims;
  }

  /** New entries, waiting up to `waitMs` for one (an append on any node ends the wait). */
  async #read(max: number, waitMs: number): Promise<Claim[]> {
    const reply = (await this.#reader.xreadgroup(
      'GROUP',
      GROUP,
      this.consumer,
      'COUNT',
      max,
      'BLOCK',
      Math.max(1, Math.round(waitMs)),
      'STREAMS',
      this.#stream,
      '>',
    )) as Array<[string, StreamEntry[]]> | null;
    return (reply?.[0]?.[1] ?? []).flatMap(([id, fields]) =>
      fields === null ? [] : [this.#claimOf(id, decode(fields[1] as string))],
    );
  }

  /**
   * Takes over entries pending longer than the claim timeout: their node died or stalled. The
   * delivery count (one per node that held the entry) says how many attempts were interrupted.
   */
  async #reclaim(max: number): Promise<Claim[]> {
    this.#nextReclaim = Date.now() + Math.max(100, this.#o.claimIdleMs / 4);
    const [cursor, entries] = (await this.#redis.xautoclaim(
      this.#stream,
      GROUP,
      this.consumer,
      this.#o.claimIdleMs,
      this.#cursor,
      'COUNT',
      max,
    )) as [string, StreamEntry[]];
    this.#cursor = cursor;
    // More may be idle past the cursor: look again at the next claim rather than after a period.
    if (cursor !== '0-0') this.#nextReclaim = 0;
    const live = entries.filter((e): e is [string, string[]] => e[1] !== null);
    if (live.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const [id] of live) pipeline.xpending(this.#stream, GROUP, id, id, 1);
    const counts = ((await pipeline.exec()) ?? []).map(
      ([, result]) => ((result as Array<[string, string, number, number]> | undefined)?.[0]?.[3] ?? 1) as number,
    );
    return live.map(([id, fields], i) => {
      const event = decode(fields[1] as string);
      event.attempts += Math.max(0, (counts[i] ?? 1) - 1);
      return this.#claimOf(id, event);
    });
  }

  #claimOf(entryId: string, event: OutgoingEvent): Claim {
    return {
      event,
      ack: async () => {
        await this.#call('ack', this.#stream, GROUP, entryId);
      },
      retry: async (delayMs) => {
        await this.#call('retry', this.#stream, this.#retries, GROUP, entryId, Math.round(delayMs), encode(event));
      },
    };
  }

  expedite(): void {}

  async size(): Promise<number> {
    const results = (await this.#redis
      .pipeline()
      .xlen(this.#stream)
      .zcard(this.#retries)
      .xpending(this.#stream, GROUP)
      .exec()) as Array<[Error | null, unknown]>;
    const [length, waiting, summary] = results.map(([error, value]) => {
      if (error !== null) throw error;
      return value;
    }) as [number, number, [number]];
    return length - summary[0] + waiting;
  }

  async close(): Promise<OutgoingEvent[]> {
    for (const r of [this.#reader, this.#redis]) {
      if (r.status === 'end') continue;
      await r.quit().catch(() => undefined);
      r.disconnect();
    }
    return [];
  }
}

interface StoredEvent {
  readonly id: string;
  readonly type: OutgoingEvent['type'];
  readonly createdAt: number;
  readonly attempts: number;
  readonly body: string;
}

function encode(event: OutgoingEvent): string {
  const stored: StoredEvent = {
    id: event.id,
    type: event.type,
    createdAt: event.createdAt,
    attempts: event.attempts,
    body: event.body,
  };
  return JSON.stringify(stored);
}

function decode(json: string): OutgoingEvent {
  const s = JSON.parse(json) as StoredEvent;
  return { id: s.id, type: s.type, createdAt: s.createdAt, body: s.body, attempts: s.attempts };
}
