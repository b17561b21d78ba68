-- Replaces a blob, only while the writer still holds its lock (a writer stalled past
-- the lock's expiry cannot overwrite the next writer's work).
-- KEYS: the blob, its lock
-- ARGV: the new bytes, the writer's lock token
-- Returns 1 written, 0 the lock is not ours.
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
