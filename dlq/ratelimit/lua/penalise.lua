-- Hold every caller back until now + ARGV[1] seconds (never shortens a hold in force).
-- KEYS: state (the hash of acquire.lua). ARGV: seconds, window (s).
-- Answers the wait now in force, in seconds, as a string.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untl = now + tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'blocked', 'kept_until')
local current = tonumber(state[1]) or 0
if untl > current then
  local kept_until = tonumber(state[2]) or 0
  if untl > kept_until then
    -- Kept one window beyond the hold, as acquire.lua keeps the hash.
    local keep = untl + tonumber(ARGV[2])
    redis.call('HSET', KEYS[1], 'blocked', string.format('%.6f', untl),
      'kept_until', string.format('%.6f', keep))
    redis.call('PEXPIRE', KEYS[1], math.ceil((keep - now) * 1000))
  else
    redis.call('HSET', KEYS[1], 'blocked', string.format('%.6f', untl))
  end
end
return string.format('%.6f', math.max(untl, current) - now)
