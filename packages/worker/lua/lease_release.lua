-- Gives a partition lease up only if this worker holds it, so a late release never frees another's lease.
-- KEYS[1] lease key   ARGV[1] worker id
-- Returns 1 when released, 0 otherwise.

if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
