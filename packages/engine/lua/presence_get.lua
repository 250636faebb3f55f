-- Live presence of one channel: the entries whose expiry has not passed, or their counts. Reads drop nothing: an
-- expired entry is dropped (and its leave announced) by the next write, lua/presence_update.lua.
-- KEYS[1] hash (client id → info JSON)   KEYS[2] sorted set (client id → expiry, ms since 1970)
-- ARGV[1] 'entries': returns a flat {client id, info, …}
--         'stats':   returns {live entries, distinct `user` fields among them}
-- Now is the Redis server's clock, as in presence_update.lua.

local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- An entry expiring exactly now is gone, as in the memory engine.
local clients = redis.call('zrangebyscore', KEYS[2], '(' .. now, '+inf')
local infos = {}
local CHUNK = 500
for i = 1, #clients, CHUNK do
  local got = redis.call('hmget', KEYS[1], unpack(clients, i, math.min(i + CHUNK - 1, #clients)))
  for j = 1, #got do infos[i + j - 1] = got[j] end
end

if ARGV[1] ~= 'stats' then
  local flat = {}
  for i = 1, #clients do
    if infos[i] then
      flat[#flat + 1] = clients[i]
      flat[#flat + 1] = infos[i]
    end
  end
  return flat
end

-- Counted here so a stats call moves two numbers, not every info. An info without a string `user` counts as
-- the anonymous user '' (as in the memory engine).
local seen, users, live = {}, 0, 0
for i = 1, #clients do
  local info = infos[i]
  if info then
    live = live + 1
    local ok, decoded = pcall(cjson.decode, info)
    local user = ''
    if ok and type(decoded) == 'table' and type(decoded.user) == 'string' then user = decoded.user end
    if not seen[user] then
      seen[user] = true
      users = users + 1
    end
  end
end
return {live, users}
