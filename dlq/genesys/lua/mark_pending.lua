-- Mark a conversation to verify, within the to-verify set's bounds (dlq/genesys/pending.py).
-- KEYS: the set. ARGV: member, now (its score), the oldest score kept, the size at most,
--       the set's TTL in seconds.
-- Drops the ids marked before the oldest score kept; adds the member (keeping the time
-- it was first marked) unless the set is full; the set expires a TTL after this mark.
-- Answers 1 when the member waits in the set, 0 when it was not kept (full).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local kept = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not kept and redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  kept = ARGV[2]
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
if kept then return 1 end
return 0
