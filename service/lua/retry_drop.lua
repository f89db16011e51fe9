-- Removes a claimed retry whose job cannot be decoded (retryjob.c refused
-- it): it would otherwise be leased again at the end of every lease,
-- forever. Only the current claim may remove it, so of the replicas that
-- claimed it one removes it (and logs and counts it) once.
-- KEYS[1] {pw}:retries  KEYS[2] {pw}:retry-jobs  KEYS[3] {pw}:retry-claims
-- ARGV[1] retry id  ARGV[2] claim token
-- Answers {"ok", 1} removed, or {"ok", 0} when the claim is stale.

if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then
  return {'ok', 0}
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return {'ok', 1}
