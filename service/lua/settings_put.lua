-- KEYS[1] {pw}:settings  KEYS[2] {pw}:version
-- ARGV[1] company id  ARGV[2] document  ARGV[3] channel
-- Publishes "<version> settings <companyId> put <document>" (store_hooks.h).

redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], v .. ' settings ' .. ARGV[1] .. ' put ' .. ARGV[2])
return {'ok', v}
