-- Which nodes have subscribers of one channel: a sorted set of node id → expiry (ms since 1970) that each node
-- refreshes while it has local subscribers. The channel is occupied while the set holds any record, live or
-- expired but not yet dropped; dropping the last record vacates it. One script, so of all nodes writing at once
-- exactly one sees the channel become occupied and exactly one sees it vacated.
-- KEYS[1] sorted set (node id → expiry)
-- ARGV[1] 'add' | 'remove' | 'sweep'   ARGV[2] node id ('' for sweep)   ARGV[3] TTL (ms)   ARGV[4] key grace (ms)
-- Returns {'occupied' | 'vacated' | '', latest expiry left (0 when none)}.
-- Now is the Redis server's clock, as in presence_update.lua.

local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local op = ARGV[1]

local had = redis.call('zcard', KEYS[1]) > 0
if op == 'add' then
  redis.call('zadd', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
elseif op == 'remove' then
  redis.call('zrem', KEYS[1], ARGV[2])
end
-- Records of nodes that stopped refreshing (they died): an expiry exactly now is gone, as for presence.
redis.call('zremrangebyscore', KEYS[1], '-inf', now)

local last = redis.call('zrange', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] == nil then
  redis.call('del', KEYS[1])
  if had then return {'vacated', 0} end
  return {'', 0}
end
-- Outlives its last record by the grace, so a sweeper that comes late still finds the channel to vacate.
redis.call('pexpireat', KEYS[1], tonumber(last[2]) + tonumber(ARGV[4]))
if had then return {'', last[2]} end
return {'occupied', last[2]}
