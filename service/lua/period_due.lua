-- The first half of a scheduler pass: the lock, and what is due.
-- KEYS[1] {pw}:scheduler:lock  KEYS[2] {pw}:period-due
-- KEYS[3] {pw}:promo-expiry  KEYS[4] {pw}:occurrences
-- ARGV[1] now ms  ARGV[2] lock ms  ARGV[3] this replica's token
-- ARGV[4] the most entries of each queue to answer
--
-- The lock (held ARGV[2] ms, shorter than a tick) lets one replica pass
-- per tick; the replica holding it may go on (several rounds of one
-- pass). It only saves work: every claim is a ZADD NX of its own. Drops
-- the claimed occurrences that can no longer be due (score S + a day).
-- Answers {"skipped"} or {"ok", due members, expired members}: at most
-- ARGV[4] of each, the earliest first; period_claim.lua takes them with
-- their keys.

if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[3] then
    return {'skipped'}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
return {'ok',
        redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4]),
        redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4])}
