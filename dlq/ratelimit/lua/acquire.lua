-- GCRA (a smooth token bucket) on Redis TIME at the effective rate, plus a sliding log of
-- granted calls that tells LOW callers how much of the window's budget is spent while a
-- HIGH caller is about, plus a shared "blocked until" set after a 429.
-- The effective rate is the configured one, or the server's `inin-ratelimit-allowed` per
-- window less a margin when that is lower (the allowance key, kept by every report and
-- forgotten when the reports stop). Answers {seconds to wait, effective calls per
-- minute}, as strings because Lua numbers come back from Redis as integers.
-- A refused LOW caller is given a turn: the next free slot after the turns already given,
-- one slot apart, so a backlog of bookkeeping comes back one caller per slot instead of
-- every caller asking again at every slot (a turn books nothing: HIGH callers still come
-- first, and a caller that finds its slot taken is given a later turn).
-- KEYS: tat, log, blocked, allowance, high, low turns.
-- ARGV: per minute, burst, window, reserve, is_low ('1'), high hold (s), margin (share of
--       the allowance), reported allowance ('' when none), allowance ttl (s).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local burst = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local is_low = ARGV[5] == '1'
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[4], ARGV[8], 'PX', math.ceil(tonumber(ARGV[9]) * 1000))
end
-- A HIGH caller marks itself present before anything can refuse it, so bookkeeping
-- steps aside as soon as a redelivery asks, even one that is told to wait.
if not is_low then
  redis.call('SET', KEYS[5], '1', 'PX', math.ceil(tonumber(ARGV[6]) * 1000))
end

local rate = tonumber(ARGV[1]) / 60
local allowed = tonumber(redis.call('GET', KEYS[4]) or '')
if allowed and allowed >= 1 then
  -- In any fixed window, GCRA grants up to rate * window + burst: the margin covers the
  -- burst, and clock and latency skew between our grant and the server's count.
  local margin = math.max(burst + 1, math.ceil(allowed * tonumber(ARGV[7])))
  local usable = math.max(allowed - margin, 1) / window
  if usable < rate then rate = usable end
end
local effective = string.format('%.3f', rate * 60)
local interval = 1 / rate
local tolerance = (burst - 1) * interval

local hold = 0
if is_low then hold = redis.call('PTTL', KEYS[5]) end
local function refuse(wait)
  if is_low then
    -- One slot apart even while HIGH is about: turns wider apart would leave slots idle
    -- once HIGH has gone, and a caller that meets the reserve at its turn gets another.
    local turn = now + wait
    local last = tonumber(redis.call('GET', KEYS[6]) or '0')
    if last + interval > turn then turn = last + interval end
    redis.call('SET', KEYS[6], string.format('%.6f', turn), 'PX', math.ceil((turn - now + window) * 1000))
    wait = turn - now
  end
  return {string.format('%.6f', math.max(wait, 0.001)), effective}
end

local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return refuse(blocked - now) end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return refuse(wait) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if hold > 0 then
  local ceiling = math.max(1, math.floor((1 - tonumber(ARGV[4])) * rate * window + 1e-9))
  local count = redis.call('ZCARD', KEYS[2])
  if count >= ceiling then
    -- Wait until the log frees a slot or the HIGH caller has gone, whichever is first.
    local oldest = redis.call('ZRANGE', KEYS[2], count - ceiling, count - ceiling, 'WITHSCORES')
    return refuse(math.min(tonumber(oldest[2]) + window - now, hold / 1000))
  end
end
local new_tat = string.format('%.6f', tat + interval)
local ttl = math.ceil((window + tolerance + interval) * 1000)
redis.call('SET', KEYS[1], new_tat, 'PX', ttl)
redis.call('ZADD', KEYS[2], now, new_tat)
redis.call('PEXPIRE', KEYS[2], ttl)
return {'0', effective}
