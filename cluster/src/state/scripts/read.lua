-- Counts one read under a grant, if the grant is live; a single-use grant gives each
-- secret once. With a mark asked for, also returns a range of another key (the sealed
-- secrets' nonce, which changes with every write), so the reader knows in the same
-- step whether the secrets it holds are current.
-- KEYS: grant:ID, the key to mark ('' range when none)
-- ARGV: secret name, single use (0/1), node name, mark start, mark end (-1 for none)
-- Returns {1, reads, mark} served, {0, 'gone'} no such live grant, {0, 'taken'} already read.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 'gone'}
end
if ARGV[2] == '1' then
  if redis.call('HSETNX', KEYS[1], 'taken:' .. ARGV[1], ARGV[3]) == 0 then
    return {0, 'taken'}
  end
end
local mark = ''
if tonumber(ARGV[5]) >= 0 then
  mark = redis.call('GETRANGE', KEYS[2], ARGV[4], ARGV[5])
end
return {1, redis.call('HINCRBY', KEYS[1], 'reads', 1), mark}
