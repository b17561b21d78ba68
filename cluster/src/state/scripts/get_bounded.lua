-- Reads a value, only if it is at most a given size, in one step (its size and its
-- bytes cannot come from two different writes).
-- KEYS: the value
-- ARGV: the most bytes to read
-- Returns {1, bytes}, {0, size} too long, {2} no such key.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {2}
end
local len = redis.call('STRLEN', KEYS[1])
if len > tonumber(ARGV[1]) then
  return {0, len}
end
return {1, redis.call('GET', KEYS[1])}
