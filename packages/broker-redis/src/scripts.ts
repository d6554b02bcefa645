/**
 * The Lua scripts. Redis runs a script alone, so each one is an atomic step: a publication is
 * numbered, stored, remembered for its idempotency key and published to the other nodes with
 * nothing in between, and the order of history is the order of delivery.
 *
 * Times come from the Redis clock (`TIME`), never a node's, so nodes with skewed clocks agree on
 * what has expired. Redis 7 replicates script effects, so `TIME` before a write is allowed.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Creates the stream generation on first use: a new epoch, offset 0, and no stale entries.
 * Shared by publish and history so that reading an unknown channel fixes the epoch that its
 * first publication continues.
 *
 * `run` marks which Redis wrote the channel last: its run id, or `*` when that Redis fsyncs every
 * write before answering (server-probe.ts). A channel last written by a Redis that has restarted
 * since (another run id) and that did not fsync every write may have come back without its
 * latest publications (an older snapshot, an unsynced AOF): its `top` fell back, and the next
 * publications would reuse offsets that clients already hold with other data, a gap nobody
 * would notice. Such a channel starts a new generation too, so every resume is told.
 */
const ENSURE_EPOCH = `local function ensure_epoch(meta, stream, candidate, meta_ttl, run)
  local found = redis.call('HMGET', meta, 'epoch', 'top', 'run')
  local epoch, seen = found[1], found[3]
  if epoch and (seen == run or seen == '*') then
    if seen ~= run then redis.call('HSET', meta, 'run', run) end
    return epoch, tonumber(found[2])
  end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'top', 0, 'run', run)
  redis.call('PEXPIRE', meta, meta_ttl)
  return candidate, 0
end`;

/**
 * KEYS: meta, stream, idempotency key (the meta key again when there is none).
 * ARGV: mode ('s' stored, 'e' ephemeral), candidate epoch, JSON head (`{"channel":"…"`), JSON
 * rest (from `,"data":`), event ('' for none), size, ttl ms, meta ttl ms, idempotency window ms
 * (0 for none), pub/sub channel, run mark.
 * Returns {duplicate (0|1), record text}.
 */
export const PUBLISH = `${NOW_MS}
${ENSURE_EPOCH}
local window = tonumber(ARGV[9])
if window > 0 then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {1, seen} end
end
local record
if ARGV[1] == 'e' then
  record = '0\\n\\n' .. ARGV[5] .. '\\n' .. ARGV[3] .. ARGV[4]
else
  local epoch = ensure_epoch(KEYS[1], KEYS[2], ARGV[2], ARGV[8], ARGV[11])
  local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
  local json = ARGV[3] .. ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '"' .. ARGV[4]
  if tonumber(ARGV[6]) > 0 then
    -- Entry ids carry the offset (to read by offset) and the store time (to trim by age on read).
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], offset .. '-' .. now, 'j', json, 'e', ARGV[5])
    redis.call('PEXPIRE', KEYS[2], ARGV[7])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  record = offset .. '\\n' .. epoch .. '\\n' .. ARGV[5] .. '\\n' .. json
end
if window > 0 then redis.call('SET', KEYS[3], record, 'PX', window) end
redis.call('PUBLISH', ARGV[10], 'p' .. record)
return {0, record}`;

/**
 * KEYS: meta, stream.
 * ARGV: candidate epoch, meta ttl ms, size, ttl ms, mode ('s' since, 'l' latest), since offset,
 * since epoch, limit (-1 for none), run mark.
 * Returns {epoch, top, recovered (-1 not asked, 0, 1), offset1, json1, event1, ...}, oldest first.
 *
 * Retention is decided here, whatever Redis still holds: an entry is served only when it is
 * among the newest `size` offsets and younger than the ttl (ids carry the store time, and store
 * times grow with offsets, so the expired entries are always the oldest ones).
 */
export const HISTORY = `${NOW_MS}
${ENSURE_EPOCH}
local epoch, top = ensure_epoch(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[9])
local cutoff = now - tonumber(ARGV[4])
local lowest = top - tonumber(ARGV[3]) + 1
local limit = tonumber(ARGV[8])
local out = {epoch, top, -1}
local function id_of(entry)
  local offset, ms = string.match(entry[1], '^(%d+)-(%d+)$')
  return tonumber(offset), tonumber(ms)
end
local function push(entry)
  local offset = id_of(entry)
  local fields, json, event = entry[2], '', ''
  for i = 1, #fields, 2 do
    if fields[i] == 'j' then json = fields[i + 1] elseif fields[i] == 'e' then event = fields[i + 1] end
  end
  out[#out + 1] = offset
  out[#out + 1] = json
  out[#out + 1] = event
end
if ARGV[5] == 's' then
  local since = tonumber(ARGV[6])
  out[3] = 0
  if ARGV[7] ~= epoch or since > top then return out end
  if since == top then out[3] = 1 return out end
  if since + 1 < lowest then return out end
  local count = top - since
  if limit >= 0 and limit < count then count = limit end
  local entries = redis.call('XRANGE', KEYS[2], since + 1, '+', 'COUNT', math.max(count, 1))
  local first = entries[1]
  if first == nil or #entries < count then return out end
  local offset, ms = id_of(first)
  if offset ~= since + 1 or ms <= cutoff then return out end
  out[3] = 1
  for i = 1, count do push(entries[i]) end
  return out
end
if limit == 0 then return out end
local from = math.max(lowest, 1)
if limit > 0 then from = math.max(from, top - limit + 1) end
if from > top then return out end
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], from, '+')) do
  local _, ms = id_of(entry)
  if ms > cutoff then push(entry) end
end
return out`;

/**
 * Writes presence entries of one channel and pushes their expiry forward (add and refresh).
 * KEYS: presence hash, expiry zset, channel index. ARGV: ttl ms, channel, clientId1, info1, ...
 */
export const PRESENCE_PUT = `${NOW_MS}
local expires = now + tonumber(ARGV[1])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], expires, ARGV[i])
end
redis.call('ZADD', KEYS[3], 'GT', expires, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 1`;

/** KEYS: presence hash, expiry zset. ARGV: clientId. */
export const PRESENCE_REMOVE = `redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`;

/**
 * The live entries of one channel; expired ones (their node stopped refreshing) are deleted.
 * KEYS: presence hash, expiry zset. Returns ClientInfo JSON strings.
 */
export const PRESENCE_LIST = `${NOW_MS}
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #dead, 500 do
  redis.call('HDEL', KEYS[1], unpack(dead, i, math.min(i + 499, #dead)))
end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local live = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do live[id] = true end
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if live[all[i]] then out[#out + 1] = all[i + 1] end
end
return out`;

/**
 * Channels with at least one live presence entry. KEYS: channel index. ARGV: key prefix.
 * Reads each channel's expiry set by name: a standalone-Redis script (not for Redis Cluster).
 * Returns {channel1, count1, ...}.
 */
export const PRESENCE_CHANNELS = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, channel in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local n = redis.call('ZCOUNT', ARGV[1] .. ':{' .. channel .. '}:presence-exp', '(' .. now, '+inf')
  if n > 0 then
    out[#out + 1] = channel
    out[#out + 1] = n
  end
end
return out`;

/** A script run by its SHA, loaded again transparently after Redis lost its script cache (a restart). */
export class Script {
  readonly #lua: string;
  readonly #sha: string;

  constructor(lua: string) {
    this.#lua = lua;
    this.#sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.#lua, keys.length, ...keys, ...args);
    }
  }
}
