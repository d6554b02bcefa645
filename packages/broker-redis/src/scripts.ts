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
  local found = redis.call('HMGET', meta, 'epoch', 'top', 'run', 'xp')
  local epoch, seen = found[1], found[3]
  if epoch and (seen == run or seen == '*') then
    if seen ~= run then redis.call('HSET', meta, 'run', run) end
    return epoch, tonumber(found[2]), tonumber(found[4]) or 0
  end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'top', 0, 'run', run, 'xp', 0)
  redis.call('PEXPIRE', meta, meta_ttl)
  return candidate, 0, 0
end`;

/**
 * How often (ms) a busy channel's keys get their expiry pushed back. Each refresh sets it this
 * much beyond the retention time and notes when (`xp` in the meta hash), so the keys still
 * outlive the last publication by the full retention time while a channel publishing thousands
 * of times a second pays two PEXPIREs once a second instead of at every publication (they were a
 * third of the script's calls). History reads never trust key expiry anyway: they filter by
 * entry time (HISTORY below).
 */
const EXPIRY_REFRESH_MS = 1000;

/**
 * Stores and fans out a batch of publications, in order, as one atomic step: what a node
 * gathered during one event-loop turn (publish-batch.ts), on any number of channels.
 * KEYS, three per publication: meta, stream, idempotency key (the meta key when there is none).
 * ARGV: size, ttl ms, meta ttl ms, run mark, candidate epoch (for channels created here; channels
 * may share it, an epoch only has to differ between generations of one channel), then eight per
 * publication: mode ('s' stored, 'e' ephemeral), JSON head (`{"channel":"…"`), JSON rest (from
 * `,"data":`), event ('' for none), pub/sub channel, idempotency window ms (0 for none), expected
 * top offset and epoch ('' for no condition: compare-and-append, `PublishDraft.expectedTop`).
 * Returns {code, record text} per publication, in order: code 0 stored, 1 a duplicate (the first
 * result), 2 not stored because the channel's top was not the expected one (record text '').
 *
 * A publication whose key is already there answers the first result (also when that first one
 * came earlier in the same batch) and changes nothing.
 */
export const PUBLISH_BATCH = `${NOW_MS}
${ENSURE_EPOCH}
local size, ttl, meta_ttl, run, candidate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local meta, stream, idem = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local a = 5 + i * 8
  local head, rest, event, window = ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 6])
  local expected_offset, expected_epoch = ARGV[a + 7], ARGV[a + 8]
  local seen = false
  if window > 0 then seen = redis.call('GET', idem) end
  local conflict = false
  if not seen and ARGV[a + 1] ~= 'e' and expected_offset ~= '' then
    local epoch, top = ensure_epoch(meta, stream, candidate, meta_ttl, run)
    conflict = tonumber(expected_offset) ~= top or expected_epoch ~= epoch
  end
  if seen then
    out[#out + 1] = 1
    out[#out + 1] = seen
  elseif conflict then
    out[#out + 1] = 2
    out[#out + 1] = ''
  else
    local record
    if ARGV[a + 1] == 'e' then
      record = '0\\n\\n' .. event .. '\\n' .. head .. rest
    else
      local epoch, _, refreshed = ensure_epoch(meta, stream, candidate, meta_ttl, run)
      local offset = redis.call('HINCRBY', meta, 'top', 1)
      local json = head .. ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '"' .. rest
      if size > 0 then
        -- Entry ids carry the offset (to read by offset) and the store time (to trim by age on read).
        redis.call('XADD', stream, 'MAXLEN', '~', size, offset .. '-' .. now, 'j', json, 'e', event)
      end
      if now - refreshed >= ${EXPIRY_REFRESH_MS} then
        if size > 0 then redis.call('PEXPIRE', stream, ttl + ${EXPIRY_REFRESH_MS}) end
        redis.call('PEXPIRE', meta, meta_ttl + ${EXPIRY_REFRESH_MS})
        redis.call('HSET', meta, 'xp', now)
      end
      record = offset .. '\\n' .. epoch .. '\\n' .. event .. '\\n' .. json
    end
    if window > 0 then redis.call('SET', idem, record, 'PX', window) end
    redis.call('PUBLISH', ARGV[a + 5], 'p' .. record)
    out[#out + 1] = 0
    out[#out + 1] = record
  end
end
return out`;

/**
 * KEYS: meta, stream.
 * ARGV: candidate epoch, meta ttl ms, size, ttl ms, mode ('s' since, 'l' latest), since offset,
 * since epoch, limit (-1 for none), run mark, max bytes (-1 for none).
 * Returns {epoch, top, recovered (-1 not asked, 0, 1), offset1, json1, event1, ...}, oldest first.
 * With max bytes, a page holds as many as fit in that much JSON and at least one (the rule of
 * `pageWithin` in @herald/server): the oldest after `since`, or the newest ones.
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
local max_bytes = tonumber(ARGV[10])
local out = {epoch, top, -1}
local function id_of(entry)
  local offset, ms = string.match(entry[1], '^(%d+)-(%d+)$')
  return tonumber(offset), tonumber(ms)
end
local function json_of(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'j' then return fields[i + 1] end
  end
  return ''
end
local function push(entry)
  local offset = id_of(entry)
  local fields, event = entry[2], ''
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then event = fields[i + 1] end
  end
  out[#out + 1] = offset
  out[#out + 1] = json_of(entry)
  out[#out + 1] = event
end
-- How many of entries[first..last] (stepping by step) fit in max_bytes, at least one.
local function fitting(entries, first, last, step)
  local n, bytes = 0, 0
  for i = first, last, step do
    bytes = bytes + string.len(json_of(entries[i]))
    if max_bytes >= 0 and bytes > max_bytes and n > 0 then return n end
    n = n + 1
  end
  return n
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
  for i = 1, fitting(entries, 1, count, 1) do push(entries[i]) end
  return out
end
if limit == 0 then return out end
local from = math.max(lowest, 1)
if limit > 0 then from = math.max(from, top - limit + 1) end
if from > top then return out end
local kept = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], from, '+')) do
  local _, ms = id_of(entry)
  if ms > cutoff then kept[#kept + 1] = entry end
end
if #kept == 0 then return out end
for i = #kept - fitting(kept, #kept, 1, -1) + 1, #kept do push(kept[i]) end
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
