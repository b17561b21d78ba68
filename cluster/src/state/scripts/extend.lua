-- Moves a live grant's end, with its new record.
-- KEYS: grant:ID, events
-- ARGV: new JSON, new end (ms since the epoch), grant id
-- Returns 1 if the grant was live, 0 if not.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'json', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], 'grant ' .. ARGV[3])
return 1
