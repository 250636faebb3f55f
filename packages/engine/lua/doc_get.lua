-- Reads a document atomically: its channel's position (top offset = version, epoch) and its stored state.
-- Creates the meta (a new epoch) when the channel has none, like history.lua, so the epoch a reader gets is
-- the one it will follow the channel in.
-- KEYS[1] doc hash (s = state JSON, w = writes JSON, f = floor, v = version last written)
-- KEYS[2] meta hash (e = epoch, o = top offset, s = history size)
-- KEYS[3] idempotency key of the request being processed (read only when ARGV[3] is '1')
-- ARGV[1] epoch to use if the channel has none   ARGV[2] meta TTL (s) for a meta created here
-- ARGV[3] '1': also return writes, floor, stored version and the idempotency record (the worker's load)
-- Returns {top offset, epoch, state JSON or false, [writes JSON or false, floor or false, version or false,
-- idempotency record or false]}.

local meta = redis.call('hmget', KEYS[2], 'e', 'o')
local epoch = meta[1]
local top = tonumber(meta[2]) or 0
if not epoch then
  epoch = ARGV[1]
  redis.call('hset', KEYS[2], 'e', epoch)
  redis.call('expire', KEYS[2], ARGV[2])
end

if ARGV[3] ~= '1' then
  return {top, epoch, redis.call('hget', KEYS[1], 's')}
end
local doc = redis.call('hmget', KEYS[1], 's', 'w', 'f', 'v')
return {top, epoch, doc[1], doc[2], doc[3], doc[4], redis.call('get', KEYS[3])}
