-- Extends a partition lease only if this worker still holds it.
-- KEYS[1] lease key   ARGV[1] worker id   ARGV[2] lease lifetime (ms)
-- Returns 1 when renewed, 0 when the lease is gone or held by another worker.

if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
