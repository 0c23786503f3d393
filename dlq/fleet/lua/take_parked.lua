-- Take the lines parked at or before ARGV[1] (epoch seconds), at most ARGV[2] of them, off
-- the parked passes (KEYS[1], hash: line -> replay) and their parking times (KEYS[2],
-- sorted set: line -> when): answers line, replay, line, replay... (replay false when the
-- hash no longer held it). One script, so that two sweeps never take a line twice.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due == 0 then return {} end
local replays = redis.call('HMGET', KEYS[1], unpack(due))
redis.call('HDEL', KEYS[1], unpack(due))
redis.call('ZREM', KEYS[2], unpack(due))
local taken = {}
for i, line in ipairs(due) do
  taken[2 * i - 1] = line
  taken[2 * i] = replays[i]
end
return taken
