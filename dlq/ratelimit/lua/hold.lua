-- Hold a target's sends until now + ARGV[1] seconds (never shortens a hold in force).
-- KEYS: held (microseconds). Answers the wait now in force, in seconds, as a string.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + math.ceil(tonumber(ARGV[1]) * 1000000)
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > current then
  redis.call('SET', KEYS[1], string.format('%d', untl), 'PX', math.ceil((untl - now) / 1000) + 1000)
  current = untl
end
return string.format('%.6f', (current - now) / 1000000)
