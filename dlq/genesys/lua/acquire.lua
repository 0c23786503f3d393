-- GCRA (a smooth token bucket) on Redis TIME, plus a sliding log of granted calls that
-- tells LOW callers how much of the window's budget is already spent, plus a shared
-- "blocked until" set after a 429. Answers the seconds to wait, as a string because Lua
-- numbers come back from Redis as integers.
-- KEYS: tat, log, blocked. ARGV: interval, tolerance, window, low ceiling, is_low ('1').
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return string.format('%.6f', blocked - now) end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return string.format('%.6f', wait) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if ARGV[5] == '1' then
  local ceiling = tonumber(ARGV[4])
  local count = redis.call('ZCARD', KEYS[2])
  if count >= ceiling then
    local oldest = redis.call('ZRANGE', KEYS[2], count - ceiling, count - ceiling, 'WITHSCORES')
    return string.format('%.6f', math.max(tonumber(oldest[2]) + window - now, 0.001))
  end
end
local new_tat = string.format('%.6f', tat + interval)
local ttl = math.ceil((window + tolerance + interval) * 1000)
redis.call('SET', KEYS[1], new_tat, 'PX', ttl)
redis.call('ZADD', KEYS[2], now, new_tat)
redis.call('PEXPIRE', KEYS[2], ttl)
return '0'
