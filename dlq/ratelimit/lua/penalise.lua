-- Hold every caller back until now + ARGV[1] seconds (never shortens a hold in force).
-- KEYS: blocked. Answers the wait now in force, in seconds, as a string.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untl = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > current then
  local ttl = math.ceil(tonumber(ARGV[1]) * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.6f', untl), 'PX', ttl)
end
return string.format('%.6f', math.max(untl, current) - now)
