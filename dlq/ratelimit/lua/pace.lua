-- A target's pace: strict GCRA on Redis TIME in whole microseconds, with no burst: two
-- grants are never closer than one interval (1/rate), so no sliding second holds more
-- than ceil(rate) grants. Integer microseconds and an interval rounded up keep rounding
-- from ever bringing two grants closer than that.
-- The rate is the lowest of the caller's (ARGV[1], 0: none) and a temporary one an
-- operator installed (KEYS[3], a redrive's --rate, with its own expiry). A target that
-- answered 429 with Retry-After is held (KEYS[2]: until when, in microseconds) for
-- everyone until then. Answers {seconds to wait ('0': granted), the grant's Redis time
-- in microseconds ('0' when refused or unpaced), the rate applied ('0': none)}.
-- KEYS: tat, held, temporary rate. ARGV: rate per second ('0': none).
-- An unpaced target that nobody holds (most sends) costs one MGET: no clock is read.
local got = redis.call('MGET', KEYS[3], KEYS[2])
local rate = tonumber(ARGV[1])
local temporary = tonumber(got[1] or '')
if temporary and temporary > 0 and (rate <= 0 or temporary < rate) then rate = temporary end
local shown = rate > 0 and string.format('%.6f', rate) or '0'
local held = tonumber(got[2] or '0')
if held == 0 and rate <= 0 then return {'0', '0', '0'} end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if held > now then
  return {string.format('%.6f', (held - now) / 1000000), '0', shown}
end
if rate <= 0 then return {'0', '0', '0'} end

local interval = math.ceil(1000000 / rate)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat > now then
  return {string.format('%.6f', (tat - now) / 1000000), '0', shown}
end
local new_tat = string.format('%d', now + interval)
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(interval / 1000) + 1000)
return {'0', string.format('%d', now), shown}
