-- A batch of attempt log entries; a deleted webhook's are skipped.
-- KEYS[1] {pw}:webhooks  KEYS[1+i] {pw}:attempts:<id of entry i>
-- ARGV[1] TTL ms  ARGV[2] attempt log length
-- ARGV[1+2i] the webhook id of entry i  ARGV[2+2i] entry i

for i = 2, #KEYS do
  if redis.call('HEXISTS', KEYS[1], ARGV[2 * i - 1]) == 1 then
    redis.call('LPUSH', KEYS[i], ARGV[2 * i])
    redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[2]) - 1)
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return #KEYS - 1
