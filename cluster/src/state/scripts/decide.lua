-- Applies a planned change to a request, only if nobody changed it since it was read.
-- KEYS: req:ID, req:pending, req:agent:NAME, events, grant:GID, grants:agent:NAME
-- ARGV: expected version, new JSON, settled (0/1), keep settled (ms), request id,
--       grant JSON ('' for none), grant end (ms since the epoch), grant id
-- Returns {1, new version} applied, {0, current version} changed meanwhile, {-1} missing.
local version = redis.call('HGET', KEYS[1], 'version')
if not version then
  return {-1}
end
if version ~= ARGV[1] or redis.call('HGET', KEYS[1], 'settled') == '1' then
  return {0, tonumber(version)}
end
local next = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'settled', ARGV[3])
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[5])
  redis.call('SREM', KEYS[3], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[5], 'json', ARGV[6], 'reads', 0)
  redis.call('PEXPIREAT', KEYS[5], ARGV[7])
  redis.call('SADD', KEYS[6], ARGV[8])
  redis.call('PUBLISH', KEYS[4], 'grant ' .. ARGV[8])
end
redis.call('PUBLISH', KEYS[4], 'req ' .. ARGV[5])
return {1, next}
