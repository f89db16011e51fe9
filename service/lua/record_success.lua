-- KEYS[1] {pw}:webhooks  KEYS[2] {pw}:attempts:<id>  KEYS[3] {pw}:retries
-- KEYS[4] {pw}:retry-jobs  KEYS[5] {pw}:retry-claims
-- ARGV[1] id  ARGV[2] attempt log entry  ARGV[3] its TTL ms
-- ARGV[4] attempt log length  ARGV[5] retry id being finished or ""
-- ARGV[6] its claim token
-- Answers {"ok", 1}, or {"ok", 0} for a stale claim (nothing changed).

if ARGV[5] ~= '' then
  if redis.call('HGET', KEYS[5], ARGV[5]) ~= ARGV[6] then
    return {'ok', 0}
  end
  redis.call('ZREM', KEYS[3], ARGV[5])
  redis.call('HDEL', KEYS[4], ARGV[5])
  redis.call('HDEL', KEYS[5], ARGV[5])
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return {'ok', 1}
