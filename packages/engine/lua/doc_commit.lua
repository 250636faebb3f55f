-- Commits one decided document update if the document is still at the version it was decided against (CAS):
-- writes the new state, bumps the channel offset, appends to history and publishes exactly as publish.lua
-- does, and records the outcome under the idempotency key. A conflict is recorded the same way, guarded by
-- the same check, without writing the document. Every key carries the `{<channel>}` hash tag.
-- KEYS[1] doc hash (s = state JSON, w = writes JSON, f = floor, v = version)
-- KEYS[2] meta hash (e = epoch, o = top offset, s = history size)
-- KEYS[3] history stream (entry id = offset, field d = publication JSON)
-- KEYS[4] idempotency key
-- ARGV[1] expected version (the meta offset the update was decided against)
-- ARGV[2] 'commit' or 'conflict'
-- ARGV[3] new state JSON   ARGV[4] new writes JSON   ARGV[5] new floor   (commit only)
-- ARGV[6] publication JSON `{"offset":V+1,"data":…}` (commit only)
-- ARGV[7] history size (>= 1)   ARGV[8] history TTL (s)   ARGV[9] epoch to use if the channel has none
-- ARGV[10] pub/sub channel   ARGV[11] outcome JSON to record   ARGV[12] idempotency TTL (s)
-- Returns {'dup', recorded outcome} | {'stale', current offset} | {'ok', epoch}.

local seen = redis.call('get', KEYS[4])
if seen then
  return {'dup', seen}
end

local meta = redis.call('hmget', KEYS[2], 'e', 'o', 's')
local top = tonumber(meta[2]) or 0
if top ~= tonumber(ARGV[1]) then
  return {'stale', top}
end

local epoch = meta[1]
if ARGV[2] == 'commit' then
  if not epoch then
    epoch = ARGV[9]
    redis.call('hset', KEYS[2], 'e', epoch)
    -- As in publish.lua: history left behind by a lost meta belongs to an old epoch.
    redis.call('del', KEYS[3])
  end
  local offset = redis.call('hincrby', KEYS[2], 'o', 1)
  if meta[3] ~= ARGV[7] then
    redis.call('hset', KEYS[2], 's', ARGV[7])
  end
  -- A document's version is its offset: neither the meta nor the document may expire (history still does).
  redis.call('persist', KEYS[2])
  redis.call('hset', KEYS[1], 's', ARGV[3], 'w', ARGV[4], 'f', ARGV[5], 'v', offset)
  redis.call('persist', KEYS[1])
  redis.call('xadd', KEYS[3], 'MAXLEN', '~', ARGV[7], offset, 'd', ARGV[6])
  redis.call('expire', KEYS[3], ARGV[8])
  -- `<offset> <epoch> <json>`, the payload format of publish.lua.
  redis.call('publish', ARGV[10], offset .. ' ' .. epoch .. ' ' .. ARGV[6])
end

redis.call('set', KEYS[4], ARGV[11], 'EX', ARGV[12])
return {'ok', epoch or ''}
