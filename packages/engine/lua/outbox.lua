-- An outbox: an ordered, bounded log that every node appends to and one node at a time (the lease holder) reads
-- with a cursor per reader, e.g. webhook events waiting for their receivers.
-- KEYS[1] stream (entry fields: n = sequence number, e = body)   KEYS[2] sequence counter
-- KEYS[3] hash (reader → cursor `<entry id> <n>`)   KEYS[4] lease (the holder's id)
-- ARGV[1] op, then:
--   'append' ARGV[2] most entries kept   ARGV[3] lifetime of idle keys (ms)   ARGV[4], … bodies. Returns the count.
--            Beyond the bound the oldest entries go (MAXLEN ~, so a little more may be kept).
--   'read'   ARGV[2] entry id to read after ('' = from the oldest)   ARGV[3] count.
--            Returns {{entry id, n, body}, …}.
--   'claim'  ARGV[2] holder   ARGV[3] TTL (ms). Takes the lease, or keeps it for its holder; returns 1 when held.
--   'release' ARGV[2] holder. Returns 1 when the holder had the lease.
--   'cursor' ARGV[2] reader. Returns the cursor, or '' when none.
--   'save'   ARGV[2] reader   ARGV[3] cursor   ARGV[4] holder   ARGV[5] lifetime of idle keys (ms). Only while the
--            holder holds the lease; returns 1 when saved.
--   'trim'   ARGV[2] entry id. Drops the entries up to and including it. Returns the number dropped.
-- The sequence numbers let a reader count the entries the bound dropped before it read them.

local op = ARGV[1]
if op == 'append' then
  local keep, idle = ARGV[2], tonumber(ARGV[3])
  for i = 4, #ARGV do
    local n = redis.call('incr', KEYS[2])
    redis.call('xadd', KEYS[1], 'MAXLEN', '~', keep, '*', 'n', n, 'e', ARGV[i])
  end
  redis.call('pexpire', KEYS[1], idle)
  redis.call('pexpire', KEYS[2], idle)
  return #ARGV - 3
elseif op == 'read' then
  local from = '-'
  if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
  local entries = redis.call('xrange', KEYS[1], from, '+', 'COUNT', tonumber(ARGV[3]))
  local out = {}
  for _, entry in ipairs(entries) do
    local fields, n, body = entry[2], '0', ''
    for i = 1, #fields, 2 do
      if fields[i] == 'n' then n = fields[i + 1] elseif fields[i] == 'e' then body = fields[i + 1] end
    end
    out[#out + 1] = {entry[1], n, body}
  end
  return out
elseif op == 'claim' then
  local holder = redis.call('get', KEYS[4])
  if holder and holder ~= ARGV[2] then return 0 end
  redis.call('set', KEYS[4], ARGV[2], 'PX', tonumber(ARGV[3]))
  return 1
elseif op == 'release' then
  if redis.call('get', KEYS[4]) ~= ARGV[2] then return 0 end
  redis.call('del', KEYS[4])
  return 1
elseif op == 'cursor' then
  return redis.call('hget', KEYS[3], ARGV[2]) or ''
elseif op == 'save' then
  if redis.call('get', KEYS[4]) ~= ARGV[4] then return 0 end
  redis.call('hset', KEYS[3], ARGV[2], ARGV[3])
  redis.call('pexpire', KEYS[3], tonumber(ARGV[5]))
  return 1
elseif op == 'trim' then
  -- MINID keeps entries at or above the id: the one after this entry.
  local dash = string.find(ARGV[2], '-', 1, true)
  local ms, seq = string.sub(ARGV[2], 1, dash - 1), tonumber(string.sub(ARGV[2], dash + 1))
  return redis.call('xtrim', KEYS[1], 'MINID', ms .. '-' .. (seq + 1))
end
return redis.error_reply('outbox.lua: unknown op ' .. tostring(op))
