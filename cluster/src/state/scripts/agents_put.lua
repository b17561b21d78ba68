-- Replaces the cluster's agents, only if they are still the version the writer read
-- (or, to seed them, only if there are none yet), and announces it.
-- KEYS: agents (a hash: `version`, `set`), events
-- ARGV: the version read ('' for "none yet"), the new version, the new set (JSON)
-- Returns 1 written, 0 someone else changed them first (nothing written).
local now = redis.call('HGET', KEYS[1], 'version')
if ARGV[1] == '' then
  if now then
    return 0
  end
elseif now ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'set', ARGV[3])
redis.call('PUBLISH', KEYS[2], 'agents')
return 1
