-- Renews a claimed retry's lease when its attempt really starts (it may
-- have waited in a busy target's queue since the claim), if the claim is
-- still current.
-- KEYS[1] {pw}:retries  KEYS[2] {pw}:retry-claims
-- ARGV[1] retry id  ARGV[2] claim token  ARGV[3] lease end ms
-- Answers {"ok", 1} renewed, or {"ok", 0} when the claim is stale.

if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return {'ok', 0}
end
redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[3]), ARGV[1])
return {'ok', 1}
