-- Adds or refreshes presence entries of one channel; each expires `ttl` after now unless added again.
-- KEYS[1] hash (client id → info JSON)   KEYS[2] sorted set (client id → expiry, ms since 1970)
-- ARGV[1] TTL (ms)   ARGV[2], ARGV[3], … client id, info JSON, client id, info JSON, …
-- Returns the number of entries written.
--
-- Now is the Redis server's clock (TIME), not the caller's: every node then measures expiry on one clock, the
-- one the key expiry below runs on too. Allowed since scripts replicate their effects (the default from Redis 5).

local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expires = now + tonumber(ARGV[1])

-- Chunks keep unpack() below Lua's stack limit for channels with thousands of clients.
local CHUNK = 500
local n = (#ARGV - 1) / 2
for first = 0, n - 1, CHUNK do
  local infos, scores = {}, {}
  for i = first, math.min(first + CHUNK, n) - 1 do
    local client = ARGV[2 + 2 * i]
    infos[#infos + 1] = client
    infos[#infos + 1] = ARGV[3 + 2 * i]
    scores[#scores + 1] = expires
    scores[#scores + 1] = client
  end
  redis.call('hset', KEYS[1], unpack(infos))
  redis.call('zadd', KEYS[2], unpack(scores))
end

-- Both keys live as long as their longest-lived entry (not just this call's TTL, which may be shorter than an
-- earlier caller's): a channel whose every node died vanishes by itself.
local last = redis.call('zrange', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('pexpireat', KEYS[1], last[2])
redis.call('pexpireat', KEYS[2], last[2])
return n
