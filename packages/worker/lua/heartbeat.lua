-- Registers a live worker and counts the live ones, on the Redis clock so worker clocks need not agree.
-- KEYS[1] sorted set of workers (member = worker id, score = heartbeat expiry in ms)
-- ARGV[1] worker id   ARGV[2] heartbeat lifetime (ms)
-- Returns {live workers (this one included), Redis time in ms}.

local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {redis.call('zcard', KEYS[1]), now}
