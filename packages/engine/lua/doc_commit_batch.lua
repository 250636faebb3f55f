-- Commits a group of decided updates of one document in one step (group commit), if the document is still at
-- the version the group was decided against (CAS). The updates were decided one after another in memory, so
-- the final state, writes and floor are written once; each accepted update still makes its own history entry
-- and publication, in order and exactly as publish.lua does (offsets expected+1, +2, ...), and
-- every outcome (accepted or conflict) is recorded under its idempotency key. Nothing is written when any of
-- the keys is already recorded (the caller decides the group again knowing those records) or the guard is
-- stale. Every key carries the `{<channel>}` hash tag.
-- KEYS[1] doc hash   KEYS[2] meta hash   KEYS[3] history stream   KEYS[3+i] idempotency key of record i
-- ARGV[1] expected version   ARGV[2] final state JSON   ARGV[3] final writes JSON   ARGV[4] final floor
--   (ARGV[2..4] unused when no record is a commit)
-- ARGV[5] history size (>= 1)   ARGV[6] history TTL (s)   ARGV[7] epoch to use if the channel has none
-- ARGV[8] pub/sub channel   ARGV[9] idempotency TTL (s)   ARGV[10] n, the number of records
-- ARGV[9+2i] publication JSON of record i (`{"offset":…,"data":…}`), '' for a conflict
-- ARGV[10+2i] outcome JSON of record i
-- ARGV[11+2n], optional: 'spublish' on Redis Cluster (sharded pub/sub), 'publish' when absent
-- Returns {'dup', {i, recorded outcome, ...}} | {'stale', current offset} | {'ok', epoch}.

local n = tonumber(ARGV[10])
local publish = ARGV[11 + 2 * n] or 'publish'
local dups = {}
for i = 1, n do
  local seen = redis.call('get', KEYS[3 + i])
  if seen then
    dups[#dups + 1] = i
    dups[#dups + 1] = seen
  end
end
if #dups > 0 then
  return {'dup', dups}
end

local meta = redis.call('hmget', KEYS[2], 'e', 'o', 's')
local top = tonumber(meta[2]) or 0
if top ~= tonumber(ARGV[1]) then
  return {'stale', top}
end

local epoch = meta[1]
local offset = top
for i = 1, n do
  local publication = ARGV[9 + 2 * i]
  if publication ~= '' then
    if not epoch then
      epoch = ARGV[7]
      redis.call('hset', KEYS[2], 'e', epoch)
      -- As in publish.lua: history left behind by a lost meta belongs to an old epoch.
      redis.call('del', KEYS[3])
    end
    offset = redis.call('hincrby', KEYS[2], 'o', 1)
    redis.call('xadd', KEYS[3], 'MAXLEN', '~', ARGV[5], offset, 'd', publication)
    -- `<offset> <epoch> <json>`, the payload format of publish.lua.
    redis.call(publish, ARGV[8], offset .. ' ' .. epoch .. ' ' .. publication)
  end
  redis.call('set', KEYS[3 + i], ARGV[10 + 2 * i], 'EX', ARGV[9])
end

if offset ~= top then
  if meta[3] ~= ARGV[5] then
    redis.call('hset', KEYS[2], 's', ARGV[5])
  end
  -- A document's version is its offset: neither the meta nor the document may expire (history still does).
  redis.call('persist', KEYS[2])
  redis.call('hset', KEYS[1], 's', ARGV[2], 'w', ARGV[3], 'f', ARGV[4], 'v', offset)
  redis.call('persist', KEYS[1])
  redis.call('expire', KEYS[3], ARGV[6])
end
return {'ok', epoch or ''}
