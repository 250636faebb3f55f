-- Reads a channel's position and history; creates the meta (a new epoch) when the channel has none, so a
-- channel keeps one epoch from its first read on, even before anything is published.
-- KEYS[1] meta hash (e = epoch, o = top offset, s = history size)   KEYS[2] history stream (entry id = offset)
-- ARGV[1] epoch to use if the channel has none   ARGV[2] meta TTL (s) for a meta created here
-- ARGV[3] limit: 0 position only, negative all   ARGV[4] since offset, '' for none   ARGV[5] '1' newest first
-- ARGV[6] epoch of a position the caller saw ('' for none)   ARGV[7] its offset
-- Returns {top offset, epoch, {{id, {'d', json}}, …}}.

local meta = redis.call('hmget', KEYS[1], 'e', 'o', 's')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[1]
  redis.call('hset', KEYS[1], 'e', epoch)
  redis.call('expire', KEYS[1], ARGV[2])
  return {0, epoch, {}}
end

local top = tonumber(meta[2]) or 0
local size = tonumber(meta[3]) or 0
-- The caller saw an offset this epoch no longer has: Redis lost acknowledged publications (a failover before
-- the replica caught up) and would hand their offsets to new ones. A new epoch makes every old position
-- unrecoverable, so nobody skips the new publications as already seen. Only the first caller forks it.
if ARGV[6] ~= '' and ARGV[6] == epoch and tonumber(ARGV[7]) > top then
  epoch = ARGV[1]
  redis.call('hset', KEYS[1], 'e', epoch)
end
local limit = tonumber(ARGV[3])
if limit == 0 or top == 0 or size == 0 then
  return {top, epoch, {}}
end

-- The stream is trimmed with MAXLEN ~ and may hold more than `size` entries: cap by offset instead.
local first = top - size + 1
if first < 1 then first = 1 end
local since = tonumber(ARGV[4])
local entries
if ARGV[5] == '1' then
  local from = top
  if since and since - 1 < from then from = since - 1 end
  if from < first then return {top, epoch, {}} end
  if limit > 0 then
    entries = redis.call('xrevrange', KEYS[2], from, first, 'COUNT', limit)
  else
    entries = redis.call('xrevrange', KEYS[2], from, first)
  end
else
  local from = first
  if since and since + 1 > from then from = since + 1 end
  if from > top then return {top, epoch, {}} end
  if limit > 0 then
    entries = redis.call('xrange', KEYS[2], from, top, 'COUNT', limit)
  else
    entries = redis.call('xrange', KEYS[2], from, top)
  end
end
return {top, epoch, entries}
