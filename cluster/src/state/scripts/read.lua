-- Counts one read under a grant, if the grant is live; a single-use grant gives each
-- secret once.
-- KEYS: grant:ID
-- ARGV: secret name, single use (0/1), node name
-- Returns {1, reads} served, {0, 'gone'} no such live grant, {0, 'taken'} already read.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 'gone'}
end
if ARGV[2] == '1' then
  if redis.call('HSETNX', KEYS[1], 'taken:' .. ARGV[1], ARGV[3]) == 0 then
    return {0, 'taken'}
  end
end
return {1, redis.call('HINCRBY', KEYS[1], 'reads', 1)}
