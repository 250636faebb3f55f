-- Commits decided groups of updates (group commit), each for one document, in one step: a document's group is
-- written if the document is still at the version the group was decided against (CAS). The updates of a group
-- were decided one after another in memory, so its final state, writes and floor are written once; each accepted
-- update still makes its own history entry and publication, in order and exactly as publish.lua does (offsets
-- expected+1, +2, ...), and every outcome (accepted or conflict) is recorded under its idempotency key. Nothing of
-- a group is written when any of its keys is already recorded (the caller decides the group again knowing those
-- records) or its guard is stale; the other groups of the call are not affected. Every key of a group carries its
-- channel's `{<channel>}` hash tag, so several groups in one call need one Redis server (not Redis Cluster).
-- Per group, one block after another (k = keys before the block, a = arguments before it):
-- KEYS[k+1] doc hash   KEYS[k+2] meta hash   KEYS[k+3] history stream   KEYS[k+3+i] idempotency key of record i
-- ARGV[a+1] expected version   ARGV[a+2] final state JSON   ARGV[a+3] final writes JSON   ARGV[a+4] final floor
--   (ARGV[a+2..a+4] unused when no record is a commit)
-- ARGV[a+5] history size (>= 1)   ARGV[a+6] history TTL (s)   ARGV[a+7] epoch to use if the channel has none
-- ARGV[a+8] pub/sub channel   ARGV[a+9] idempotency TTL (s)   ARGV[a+10] n, the number of records
-- ARGV[a+9+2i] publication JSON of record i (`{"offset":…,"data":…}`), '' for a conflict
-- ARGV[a+10+2i] outcome JSON of record i
-- ARGV[a+11+2n] 'publish', or 'spublish' on Redis Cluster (sharded pub/sub)
-- Returns one reply per group, in order: {'dup', {i, recorded outcome, ...}} | {'stale', current offset} | {'ok', epoch}.

local function commit(k, a)
  local n = tonumber(ARGV[a + 10])
  local publish = ARGV[a + 11 + 2 * n]
  local dups = {}
  for i = 1, n do
    local seen = redis.call('get', KEYS[k + 3 + i])
    if seen then
      dups[#dups + 1] = i
      dups[#dups + 1] = seen
    end
  end
  if #dups > 0 then
    return {'dup', dups}
  end

  local meta = redis.call('hmget', KEYS[k + 2], 'e', 'o', 's')
  local top = tonumber(meta[2]) or 0
  if top ~= tonumber(ARGV[a + 1]) then
    return {'stale', top}
  end

  local epoch = meta[1]
  local offset = top
  for i = 1, n do
    local publication = ARGV[a + 9 + 2 * i]
    if publication ~= '' then
      if not epoch then
        epoch = ARGV[a + 7]
        redis.call('hset', KEYS[k + 2], 'e', epoch)
        -- As in publish.lua: history left behind by a lost meta belongs to an old epoch.
        redis.call('del', KEYS[k + 3])
      end
      offset = redis.call('hincrby', KEYS[k + 2], 'o', 1)
      redis.call('xadd', KEYS[k + 3], 'MAXLEN', '~', ARGV[a + 5], offset, 'd', publication)
      -- `<offset> <epoch> <json>`, the payload format of publish.lua.
      redis.call(publish, ARGV[a + 8], offset .. ' ' .. epoch .. ' ' .. publication)
    end
    redis.call('set', KEYS[k + 3 + i], ARGV[a + 10 + 2 * i], 'EX', ARGV[a + 9])
  end

  if offset ~= top then
    if meta[3] ~= ARGV[a + 5] then
      redis.call('hset', KEYS[k + 2], 's', ARGV[a + 5])
    end
    -- A document's version is its offset: neither the meta nor the document may expire (history still does).
    redis.call('persist', KEYS[k + 2])
    redis.call('hset', KEYS[k + 1], 's', ARGV[a + 2], 'w', ARGV[a + 3], 'f', ARGV[a + 4], 'v', offset)
    redis.call('persist', KEYS[k + 1])
    redis.call('expire', KEYS[k + 3], ARGV[a + 6])
  end
  return {'ok', epoch or ''}
end

local replies = {}
local k = 0
local a = 0
while a < #ARGV do
  local n = tonumber(ARGV[a + 10])
  replies[#replies + 1] = commit(k, a)
  k = k + 3 + n
  a = a + 11 + 2 * n
end
return replies
