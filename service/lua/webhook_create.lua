-- KEYS[1] {pw}:webhooks  KEYS[2] {pw}:company:<c>:webhooks  KEYS[3] {pw}:version
-- ARGV[1] id  ARGV[2] document  ARGV[3] channel
-- Publishes "<version> webhook <id> put <document>" (store_hooks.h).

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {'conflict'}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[3], v .. ' webhook ' .. ARGV[1] .. ' put ' .. ARGV[2])
return {'ok', v}
