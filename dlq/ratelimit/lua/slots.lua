-- A fleet-wide count of sends in flight to one target, at most ARGV[1] at once: each
-- holder's token scored by when its lease ends, so a crashed holder's slot comes back.
-- KEYS: the holders (sorted set). ARGV: limit, token, lease (ms).
-- Answers {'1', ''} when taken, else {'0', seconds until the first lease ends}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], lease + 1000)
  return {'1', ''}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = 1.0
if first[2] then wait = (tonumber(first[2]) - now) / 1000 end
return {'0', string.format('%.3f', wait)}
