/**
 * The connection registry on Redis. Every step is one Lua script, so the decision "this call
 * took the id up / down across the cluster" is atomic and made once.
 *
 * Keys (all under `prefix`, which carries a `{hash tag}` so a Redis Cluster keeps them in one slot):
 *   nodes               ZSET node id -> last heartbeat (Redis TIME, ms)
 *   m:<kind>:<id>       SET  nodes holding the id
 *   n:<node>:<kind>     SET  ids a node holds (to clean up after a node that died)
 *   s:<kind>:<id>       STRING, present while the id is announced up
 *   due:<kind>          ZSET id -> time its down transition is due
 * Time comes from Redis (TIME), so node clocks do not need to agree.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  TRACKED_KINDS,
  type CloseOptions,
  type ConnectionRegistry,
  type RegistryTiming,
  type TrackedKind,
  type Transition,
} from './connection-registry.js';

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** ARGV: prefix, kind, id, node. Returns 1 when this join took the id up. */
const JOIN = `
local p, kind, id, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('SADD', p .. 'm:' .. kind .. ':' .. id, node)
redis.call('SADD', p .. 'n:' .. node .. ':' .. kind, id)
if redis.call('SET', p .. 's:' .. kind .. ':' .. id, '1', 'NX') then return 1 end
return 0`;

/** ARGV: prefix, kind, id, node, delay ms. Schedules the down transition when no node is left. */
const LEAVE = `
local p, kind, id, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local m = p .. 'm:' .. kind .. ':' .. id
redis.call('SREM', p .. 'n:' .. node .. ':' .. kind, id)
if redis.call('SREM', m, node) == 1 and redis.call('SCARD', m) == 0 then
  ${NOW}
  redis.call('ZADD', p .. 'due:' .. kind, now + tonumber(ARGV[5]), id)
end
return 0`;

/**
 * ARGV: prefix, node, ttl ms, batch. Heartbeats, cleans up after dead nodes (a batch of ids per
 * call, so one script never blocks Redis for long), claims due down transitions.
 * Returns {1 if this node was not registered (evicted), now, {kind, id, kind, id, ...}}.
 */
const SWEEP = `
local p, node, ttl, batch = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
${NOW}
local kinds = {'user', 'channel'}
local fresh = redis.call('ZADD', p .. 'nodes', now, node)
local dead = redis.call('ZRANGEBYSCORE', p .. 'nodes', '-inf', now - ttl, 'LIMIT', 0, 4)
for _, d in ipairs(dead) do
  local left = 0
  for _, kind in ipairs(kinds) do
    local held = p .. 'n:' .. d .. ':' .. kind
    for _, id in ipairs(redis.call('SPOP', held, batch)) do
      local m = p .. 'm:' .. kind .. ':' .. id
      if redis.call('SREM', m, d) == 1 and redis.call('SCARD', m) == 0 then
        redis.call('ZADD', p .. 'due:' .. kind, now, id)
      end
    end
    left = left + redis.call('SCARD', held)
  end
  if left == 0 then redis.call('ZREM', p .. 'nodes', d) end
end
local out = {}
for _, kind in ipairs(kinds) do
  local dueKey = p .. 'due:' .. kind
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'LIMIT', 0, batch)) do
    redis.call('ZREM', dueKey, id)
    if redis.call('SCARD', p .. 'm:' .. kind .. ':' .. id) == 0 and redis.call('DEL', p .. 's:' .. kind .. ':' .. id) == 1 then
      table.insert(out, kind)
      table.insert(out, id)
    end
  end
end
return {fresh, now, out}`;

/** ARGV: prefix, node. Registers the node (start). */
const REGISTER = `${NOW} redis.call('ZADD', ARGV[1] .. 'nodes', now, ARGV[2]) return now`;

/** ARGV: prefix, node. Removes the node's entry once it has left everything (graceful close). */
const UNREGISTER = `redis.call('ZREM', ARGV[1] .. 'nodes', ARGV[2]) return 0`;

export interface RedisRegistryOptions extends Partial<RegistryTiming> {
  /** `redis://host:port/db`. */
  readonly url: string;
  /** Key prefix; keep a `{hash tag}` in it for Redis Cluster. Default `herald:{integrations}:`. */
  readonly prefix?: string;
  readonly nodeId?: string;
  /** Ids cleaned up and transitions claimed per sweep. Default 500. */
  readonly batch?: number;
}

type Script = 'join' | 'leave' | 'sweep' | 'register' | 'unregister';
type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;

export class RedisConnectionRegistry implements ConnectionRegistry {
  readonly name = 'redis';
  readonly nodeId: string;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #batch: number;
  readonly #held: Record<TrackedKind, Set<string>> = { user: new Set(), channel: new Set() };

  constructor(options: RedisRegistryOptions) {
    this.nodeId = options.nodeId ?? randomUUID();
    this.#prefix = options.prefix ?? 'herald:{integrations}:';
    this.#ttlMs = options.nodeTtlMs ?? 15_000;
    this.#batch = options.batch ?? 500;
    this.#redis = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.#redis.on('error', () => undefined); // reconnects by itself; failed calls reject to the caller
    const scripts: Record<Script, string> = {
      join: JOIN,
      leave: LEAVE,
      sweep: SWEEP,
      register: REGISTER,
      unregister: UNREGISTER,
    };
    for (const [name, lua] of Object.entries(scripts)) this.#redis.defineCommand(name, { numberOfKeys: 0, lua });
  }

  #call(script: Script, ...args: Array<string | number>): Promise<unknown> {
    return (this.#redis as unknown as Record<Script, ScriptFn>)[script](this.#prefix, ...args);
  }

  async start(): Promise<void> {
    await this.#redis.connect();
    await this.#call('register', this.nodeId);
  }

  async close(options: CloseOptions = {}): Promise<void> {
    if (this.#redis.status === 'end') return;
    if (options.leave !== false) {
      try {
        for (const kind of TRACKED_KINDS)
          for (const id of [...this.#held[kind]]) await this.leave(kind, id, options.delays?.[kind] ?? 0);
        await this.#call('unregister', this.nodeId);
      } catch {
        // Redis is gone: the other nodes clean up after this one once its heartbeat ages out.
      }
      await this.#redis.quit().catch(() => undefined);
    }
    this.#redis.disconnect();
  }

  async join(kind: TrackedKind, id: string): Promise<boolean> {
    this.#held[kind].add(id);
    return (await this.#call('join', kind, id, this.nodeId)) === 1;
  }

  async leave(kind: TrackedKind, id: string, delayMs: number): Promise<void> {
    this.#held[kind].delete(id);
    await this.#call('leave', kind, id, this.nodeId, Math.max(0, Math.round(delayMs)));
  }

  async sweep(): Promise<Transition[]> {
    const [fresh, now, flat] = (await this.#call('sweep', this.nodeId, this.#ttlMs, this.#batch)) as [
      number,
      number,
      string[],
    ];
    const out: Transition[] = [];
    if (fresh === 1) {
      // This node was declared dead while alive (a long pause): take its ids back.
      for (const kind of TRACKED_KINDS) {
        for (const id of [...this.#held[kind]])
          if (await this.join(kind, id)) out.push({ kind, id, state: 'up', at: now });
      }
    }
    for (let i = 0; i + 1 < flat.length; i += 2) {
      out.push({ kind: flat[i] as TrackedKind, id: flat[i + 1] as string, state: 'down', at: now });
    }
    return out;
  }

  async isConnected(kind: TrackedKind, id: string): Promise<boolean> {
    return (await this.#redis.scard(`${this.#prefix}m:${kind}:${id}`)) > 0;
  }
}
