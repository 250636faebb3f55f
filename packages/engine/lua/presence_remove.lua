-- Removes presence entries of one channel, from the hash and the sorted set together.
-- KEYS[1] hash (client id → info JSON)   KEYS[2] sorted set (client id → expiry)   ARGV client ids
-- Returns the number of entries removed.

local CHUNK = 500
local removed = 0
for i = 1, #ARGV, CHUNK do
  local last = math.min(i + CHUNK - 1, #ARGV)
  removed = removed + redis.call('hdel', KEYS[1], unpack(ARGV, i, last))
  redis.call('zrem', KEYS[2], unpack(ARGV, i, last))
end
return removed
