-- A delivery put off without an attempt (its target's queue is full): a
-- retry job like any other, with the retry id format of every retry.
-- KEYS[1] {pw}:retries  KEYS[2] {pw}:retry-jobs  KEYS[3] {pw}:seq
-- ARGV[1] webhook id  ARGV[2] due ms  ARGV[3] the job

local rid = ARGV[1] .. ':' .. ARGV[2] .. ':' .. redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], rid, ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], rid)
return {'ok', 0}
