-- The index of occupied channels: a sorted set of channel → latest expiry of its records (ms since 1970), kept by
-- every node beside the channels' own records (lua/occupancy.lua), so a sweeper finds the channels whose nodes
-- stopped refreshing without knowing which nodes existed. It is a hint: the channel's own script decides.
-- KEYS[1] sorted set (channel → expiry)
-- ARGV[1] 'touch': ARGV[2], … expiry, channel, expiry, channel, …; a channel's expiry only grows. Returns 0.
--         'due':   ARGV[2] most channels to return; returns {channel, expiry, …} whose expiry has passed, oldest first.
--         'drop':  ARGV[2] channel   ARGV[3] expiry; drops the channel if its expiry is still that one (nobody
--                  touched it since it was read). Returns 1 when dropped.
-- Now is the Redis server's clock, as in occupancy.lua (the same server on one Redis; on shards and Cluster the
-- clocks of the channel's node and the index's node, which only moves a sweep earlier or later).

local op = ARGV[1]
if op == 'touch' then
  local CHUNK = 500
  for i = 2, #ARGV, 2 * CHUNK do
    redis.call('zadd', KEYS[1], 'GT', unpack(ARGV, i, math.min(i + 2 * CHUNK - 1, #ARGV)))
  end
  return 0
elseif op == 'due' then
  local time = redis.call('time')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  return redis.call('zrangebyscore', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
elseif op == 'drop' then
  local score = redis.call('zscore', KEYS[1], ARGV[2])
  if score and tonumber(score) == tonumber(ARGV[3]) then
    redis.call('zrem', KEYS[1], ARGV[2])
    return 1
  end
  return 0
end
return redis.error_reply('occupancy_index.lua: unknown op ' .. tostring(op))
