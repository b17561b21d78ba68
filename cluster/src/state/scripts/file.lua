-- Files a request, if the agent is within its limits, all at once.
-- KEYS: req:ID, req:pending, req:agent:NAME, rate:NAME, events
-- ARGV: request JSON, deadline (ms since the epoch), pending_per_agent, requests_per_minute, request id
-- Returns {1} filed, {0, 'pending'} too many pending, {0, 'rate', retry_ms} too many this minute,
-- {0, 'exists'} the id is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, 'exists'}
end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[3]) then
  return {0, 'pending'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 60000)
if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[4]) then
  local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  local retry = 60000
  if first[2] then
    retry = tonumber(first[2]) + 60000 - now
  end
  return {0, 'rate', math.max(retry, 1000)}
end
redis.call('ZADD', KEYS[4], now, ARGV[5])
redis.call('PEXPIRE', KEYS[4], 60000)
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'version', 1, 'settled', 0)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('PUBLISH', KEYS[5], 'req ' .. ARGV[5])
return {1}
