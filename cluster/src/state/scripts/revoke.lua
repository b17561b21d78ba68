-- Ends a grant now, everywhere: the grant is gone, and a marker says it was revoked
-- until the moment it would have ended anyway.
-- KEYS: grant:ID, grants:agent:NAME, revoked:ID, events
-- ARGV: grant id
-- Returns 1 if the grant was live, 0 if not.
local left = redis.call('PTTL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if left < 0 then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], '1', 'PX', math.max(left, 1))
redis.call('PUBLISH', KEYS[4], 'grant ' .. ARGV[1])
return 1
