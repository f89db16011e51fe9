-- KEYS[1] {pw}:webhooks  KEYS[2] {pw}:company:<c>:webhooks  KEYS[3] {pw}:version
-- KEYS[4] {pw}:failures:<id>  KEYS[5] {pw}:attempts:<id>
-- ARGV[1] id  ARGV[2] channel
-- (Its pending retries are dropped when claimed.)
-- Publishes "<version> webhook <id> del" (store_hooks.h).

if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then
  return {'not_found'}
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5])
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], v .. ' webhook ' .. ARGV[1] .. ' del')
return {'ok', v}
