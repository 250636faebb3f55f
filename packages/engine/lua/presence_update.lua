-- Presence writes of one channel: add or refresh entries, remove entries, or only drop the expired ones. Each
-- keeps, per user, how many entries the channel holds, so that of all gateways writing at once exactly one sees a
-- user's first entry arrive (0 → 1) and exactly one sees its last go (1 → 0); Pusher's members are users.
-- KEYS[1] hash (client id → info JSON)   KEYS[2] sorted set (client id → expiry, ms since 1970)
-- KEYS[3] hash (user → number of entries in KEYS[1])
-- ARGV[1] 'add' | 'remove' | 'expire'   ARGV[2] pub/sub channel   ARGV[3] 'publish', or 'spublish' on Redis Cluster
-- ARGV[4] most expired entries to drop in this call
-- add:    ARGV[5] TTL (ms)   ARGV[6] key grace (ms)   ARGV[7], … client id, user, info JSON, client id, user, …
-- remove: ARGV[5] '1' to announce leaves, '0' not   ARGV[6] started   ARGV[7] first   ARGV[8] client leaves
--         ('1'/'0', see PresenceLeave in presence.ts)   ARGV[9], … client ids
-- Returns {first client ids, added client ids, joined {client, info, …}, left {client, info, …}} (PresenceUpdate).
--
-- Every call first drops the expired entries (a gateway that died left them) and announces each as a leave, `L `
-- (the user's last) or `l `, on the channel's pub/sub; joins and leaves are `j `/`l ` (a connection), `J `/`L ` (a
-- connection and its user), `a `/`r ` (the user alone), followed by the info. Announcing inside the script keeps
-- them in the order the counts changed in, whichever gateway wrote.
--
-- Now is the Redis server's clock (TIME), not the caller's: every node then measures expiry on one clock, the
-- one the key expiry below runs on too. Allowed since scripts replicate their effects (the default from Redis 5).

local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local op = ARGV[1]
local pubsub, publish = ARGV[2], ARGV[3]

-- An info without a string `user` counts as the anonymous user '' (as in presence.ts userOfInfo).
local function user_of(info)
  local ok, decoded = pcall(cjson.decode, info)
  if ok and type(decoded) == 'table' and type(decoded.user) == 'string' then return decoded.user end
  return ''
end

-- One more entry of `user`; true when it is the first.
local function add_user(user)
  return redis.call('hincrby', KEYS[3], user, 1) == 1
end

-- One entry fewer of `user`; true when it was the last.
local function drop_user(user)
  if redis.call('hincrby', KEYS[3], user, -1) > 0 then return false end
  redis.call('hdel', KEYS[3], user)
  return true
end

local function announce(prefix, info)
  redis.call(publish, pubsub, prefix .. info)
end

local first, added, joined, left = {}, {}, {}, {}

-- Clients this call adds again are refreshed, not expired.
local keep = {}
if op == 'add' then
  for i = 7, #ARGV, 3 do keep[ARGV[i]] = true end
end

-- An entry expiring exactly now is gone, as in the memory engine.
local expired = redis.call('zrangebyscore', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, client in ipairs(expired) do
  if not keep[client] then
    local info = redis.call('hget', KEYS[1], client)
    redis.call('zrem', KEYS[2], client)
    if info then
      redis.call('hdel', KEYS[1], client)
      if drop_user(user_of(info)) then
        announce('L ', info)
        left[#left + 1] = client
        left[#left + 1] = info
      else
        announce('l ', info)
      end
    end
  end
end

if op == 'add' then
  local expires = now + tonumber(ARGV[5])
  -- Chunks keep unpack() below Lua's stack limit for channels with thousands of clients.
  local CHUNK = 500
  local scores = {}
  for i = 7, #ARGV, 3 do
    local client, user, info = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local old = redis.call('hget', KEYS[1], client)
    if old ~= info then
      redis.call('hset', KEYS[1], client, info)
      if not old then
        added[#added + 1] = client
        if add_user(user) then first[#first + 1] = client end
      else
        local was = user_of(old)
        if was ~= user then
          if drop_user(was) then
            announce('r ', old)
            left[#left + 1] = client
            left[#left + 1] = old
          end
          if add_user(user) then first[#first + 1] = client end
        end
      end
    end
    scores[#scores + 1] = expires
    scores[#scores + 1] = client
    if #scores >= 2 * CHUNK then
      redis.call('zadd', KEYS[2], unpack(scores))
      scores = {}
    end
  end
  if #scores > 0 then redis.call('zadd', KEYS[2], unpack(scores)) end
elseif op == 'remove' then
  local announcing, started, was_first, client_leaves = ARGV[5] == '1', ARGV[6] == '1', ARGV[7] == '1', ARGV[8] == '1'
  for i = 9, #ARGV do
    local client = ARGV[i]
    local info = redis.call('hget', KEYS[1], client)
    if info then
      redis.call('hdel', KEYS[1], client)
      redis.call('zrem', KEYS[2], client)
      local last = drop_user(user_of(info))
      -- The rule of removalAnnouncement in presence.ts.
      if announcing then
        if started then
          if last then
            announce(client_leaves and 'L ' or 'r ', info)
            left[#left + 1] = client
            left[#left + 1] = info
          elseif client_leaves then
            announce('l ', info)
          end
        elseif was_first and not last then
          announce('a ', info)
          joined[#joined + 1] = client
          joined[#joined + 1] = info
        elseif last and not was_first then
          announce('r ', info)
          left[#left + 1] = client
          left[#left + 1] = info
        end
      end
    end
  end
end

-- The keys live as long as their longest-lived entry plus a grace (not just this call's TTL, which may be shorter
-- than an earlier caller's): a sweeper coming by after the entries expired still finds them to announce, and a
-- channel whose every node died vanishes by itself after that.
local last = redis.call('zrange', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] == nil then
  redis.call('del', KEYS[1], KEYS[2], KEYS[3])
elseif op == 'add' then
  local until_ms = tonumber(last[2]) + tonumber(ARGV[6])
  redis.call('pexpireat', KEYS[1], until_ms)
  redis.call('pexpireat', KEYS[2], until_ms)
  redis.call('pexpireat', KEYS[3], until_ms)
end
return {first, added, joined, left}
