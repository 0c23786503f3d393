-- GCRA (a smooth token bucket) on Redis TIME at the effective rate, plus a sliding log of
-- granted calls that tells LOW callers how much of the window's budget is spent while a
-- HIGH caller is about, plus a shared "blocked until" set after a 429.
-- The effective rate is the configured one, or the server's `inin-ratelimit-allowed` per
-- window less a margin when that is lower (kept by every report, forgotten when the
-- reports stop). Answers {seconds to wait, effective calls per minute}, as strings
-- because Lua numbers come back from Redis as integers.
-- A refused LOW caller is given a turn: the next free slot after the turns already given,
-- one slot apart, so a backlog of bookkeeping comes back one caller per slot instead of
-- every caller asking again at every slot (a turn books nothing: HIGH callers still come
-- first, and a caller that finds its slot taken is given a later turn).
--
-- The scalar state is one hash, read with one HMGET and written with one HSET; what
-- used to lapse with a key's TTL is a time in it, compared with TIME:
--   tat, blocked (until), allowance and allowance_until, high_until (a HIGH caller was
--   about), low_turn (the last turn given), kept_until (the hash's own expiry, set again
--   about once a window, not on every call) and log_kept_until (the log's expiry, set
--   again about once a window, when the log is also trimmed to the window).
-- The log is read with ZCOUNT over the window, so it needs no trim on every grant; the
-- periodic trim keeps it to about two windows of grants.
-- KEYS: state (hash), log (sorted set: score = grant time, member = the tat it booked).
-- ARGV: per minute, burst, window, reserve, is_low ('1'), high hold (s), margin (share of
--       the allowance), reported allowance ('' when none), allowance ttl (s).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local burst = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local is_low = ARGV[5] == '1'
local state = redis.call('HMGET', KEYS[1], 'tat', 'blocked', 'allowance', 'allowance_until',
  'high_until', 'low_turn', 'kept_until', 'log_kept_until')
local tat = tonumber(state[1]) or 0
local blocked = tonumber(state[2]) or 0
local allowed = tonumber(state[3])
local allowed_until = tonumber(state[4]) or 0
local high_until = tonumber(state[5]) or 0
local low_turn = tonumber(state[6]) or 0
local kept_until = tonumber(state[7]) or 0
local log_kept_until = tonumber(state[8]) or 0

local changes = {}
local function put(field, value)
  changes[#changes + 1] = field
  changes[#changes + 1] = string.format('%.6f', value)
end

if ARGV[8] ~= '' then
  allowed, allowed_until = tonumber(ARGV[8]), now + tonumber(ARGV[9])
  changes[#changes + 1] = 'allowance'
  changes[#changes + 1] = ARGV[8]
  put('allowance_until', allowed_until)
end
-- A HIGH caller marks itself present whether or not it is refused, so bookkeeping steps
-- aside as soon as a redelivery asks, even one that is told to wait.
if not is_low then
  high_until = now + tonumber(ARGV[6])
  put('high_until', high_until)
end

local rate = tonumber(ARGV[1]) / 60
if allowed and allowed >= 1 and allowed_until > now then
  -- In any fixed window, GCRA grants up to rate * window + burst: the margin covers the
  -- burst, and clock and latency skew between our grant and the server's count.
  local margin = math.max(burst + 1, math.ceil(allowed * tonumber(ARGV[7])))
  local usable = math.max(allowed - margin, 1) / window
  if usable < rate then rate = usable end
end
local effective = string.format('%.3f', rate * 60)
local interval = 1 / rate
local tolerance = (burst - 1) * interval

-- One HSET of what changed, and a new expiry for the hash only when a field now matters
-- past the one it has: then it is kept one window beyond, so a steady load sets it about
-- once a window.
local function save()
  local need = math.max(tat, blocked, high_until, low_turn + interval)
  if allowed then need = math.max(need, allowed_until) end
  local expire = need > kept_until
  if expire then put('kept_until', need + window) end
  if #changes > 0 then redis.call('HSET', KEYS[1], unpack(changes)) end
  if expire then redis.call('PEXPIRE', KEYS[1], math.ceil((need + window - now) * 1000)) end
end

local function refuse(wait)
  if is_low then
    -- One slot apart even while HIGH is about: turns wider apart would leave slots idle
    -- once HIGH has gone, and a caller that meets the reserve at its turn gets another.
    local turn = now + wait
    if low_turn + interval > turn then turn = low_turn + interval end
    low_turn = turn
    put('low_turn', turn)
    wait = turn - now
  end
  save()
  return {string.format('%.6f', math.max(wait, 0.001)), effective}
end

if blocked > now then return refuse(blocked - now) end
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return refuse(wait) end
local hold = 0
if is_low then hold = high_until - now end
if hold > 0 then
  local ceiling = math.max(1, math.floor((1 - tonumber(ARGV[4])) * rate * window + 1e-9))
  local since = string.format('(%.6f', now - window)
  local count = redis.call('ZCOUNT', KEYS[2], since, '+inf')
  if count >= ceiling then
    -- Wait until the log frees a slot or the HIGH caller has gone, whichever is first.
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[2], since, '+inf', 'WITHSCORES', 'LIMIT',
      count - ceiling, 1)
    return refuse(math.min(tonumber(oldest[2]) + window - now, hold))
  end
end
tat = tat + interval
put('tat', tat)
redis.call('ZADD', KEYS[2], now, string.format('%.6f', tat))
if now + window > log_kept_until then
  -- After the ZADD, so the trim never empties the log (which would drop its expiry).
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.6f', now - window))
  redis.call('PEXPIRE', KEYS[2], math.ceil(2 * window * 1000))
  put('log_kept_until', now + 2 * window)
end
save()
return {'0', effective}
