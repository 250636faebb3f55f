-- Live presence of one channel: drops the entries whose expiry passed, then returns the rest or their counts.
-- KEYS[1] hash (client id → info JSON)   KEYS[2] sorted set (client id → expiry, ms since 1970)
-- ARGV[1] 'entries': returns HGETALL's flat {client id, info, …}
--         'stats':   returns {live entries, distinct `user` fields among them}
-- Now is the Redis server's clock, as in presence_add.lua.

local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- An entry expiring exactly now is gone, as in the memory engine.
local expired = redis.call('zrangebyscore', KEYS[2], '-inf', now)
if #expired > 0 then
  local CHUNK = 500
  for i = 1, #expired, CHUNK do
    redis.call('hdel', KEYS[1], unpack(expired, i, math.min(i + CHUNK - 1, #expired)))
  end
  redis.call('zremrangebyscore', KEYS[2], '-inf', now)
end

if ARGV[1] ~= 'stats' then
  return redis.call('hgetall', KEYS[1])
end

-- Counted here so a stats call moves two numbers, not every info. An info without a string `user` counts as
-- the anonymous user '' (as in the memory engine).
local infos = redis.call('hvals', KEYS[1])
local seen, users = {}, 0
for _, info in ipairs(infos) do
  local ok, decoded = pcall(cjson.decode, info)
  local user = ''
  if ok and type(decoded) == 'table' and type(decoded.user) == 'string' then user = decoded.user end
  if not seen[user] then
    seen[user] = true
    users = users + 1
  end
end
return {#infos, users}
