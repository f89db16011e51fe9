-- KEYS[1] {pw}:webhooks  KEYS[2] {pw}:attempts:<id>  KEYS[3] {pw}:retries
-- KEYS[4] {pw}:retry-jobs
-- ARGV[1] id  ARGV[2] attempt log entry  ARGV[3] its TTL ms
-- ARGV[4] attempt log length  ARGV[5] retry id being finished or ""

if ARGV[5] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[5])
  redis.call('HDEL', KEYS[4], ARGV[5])
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return {'ok', 0}
