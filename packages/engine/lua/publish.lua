-- Publishes one publication atomically: idempotency check, epoch, next offset, history append, PUBLISH.
-- KEYS[1] meta hash (e = epoch, o = top offset, s = history size)
-- KEYS[2] history stream (entry id = offset, field d = publication JSON)
-- KEYS[3] idempotency key (same hash tag; unused when ARGV[7] is 0)
-- ARGV[1] publication body `"data":…,"info":…`   ARGV[2] history size   ARGV[3] history TTL (s)
-- ARGV[4] meta TTL (s)   ARGV[5] epoch to use if the channel has none   ARGV[6] pub/sub channel
-- ARGV[7] idempotency TTL (s), 0 without a key   ARGV[8] 'publish', or 'spublish' on Redis Cluster (sharded pub/sub)
-- Returns {offset, epoch, duplicate (0/1)}.

local idempotency_ttl = tonumber(ARGV[7])
if idempotency_ttl > 0 then
  local seen = redis.call('get', KEYS[3])
  if seen then
    local space = string.find(seen, ' ', 1, true)
    return {tonumber(string.sub(seen, 1, space - 1)), string.sub(seen, space + 1), 1}
  end
end

local size = tonumber(ARGV[2])
local meta = redis.call('hmget', KEYS[1], 'e', 's')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[5]
  redis.call('hset', KEYS[1], 'e', epoch)
  -- History left behind by a meta that expired or was evicted belongs to the old epoch, and its
  -- entry ids would be above the offsets this epoch starts again from.
  redis.call('del', KEYS[2])
end

local offset = 0
local pub
if size > 0 then
  offset = redis.call('hincrby', KEYS[1], 'o', 1)
  if meta[2] ~= ARGV[2] then
    redis.call('hset', KEYS[1], 's', size)
  end
  pub = '{"offset":' .. offset .. ',' .. ARGV[1] .. '}'
  -- The offset is the entry id, so history reads select by offset without parsing entries.
  redis.call('xadd', KEYS[2], 'MAXLEN', '~', size, offset, 'd', pub)
  redis.call('expire', KEYS[2], ARGV[3])
else
  pub = '{' .. ARGV[1] .. '}'
end
redis.call('expire', KEYS[1], ARGV[4])

-- `<offset> <epoch> <json>`: the subscriber splits on the first two spaces and never parses the JSON.
redis.call(ARGV[8], ARGV[6], offset .. ' ' .. epoch .. ' ' .. pub)

if idempotency_ttl > 0 then
  redis.call('set', KEYS[3], offset .. ' ' .. epoch, 'EX', idempotency_ttl)
end
return {offset, epoch, 0}
