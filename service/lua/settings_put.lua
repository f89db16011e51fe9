-- KEYS[1] {pw}:settings  KEYS[2] {pw}:version
-- ARGV[1] company id  ARGV[2] document  ARGV[3] channel

redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], v .. ' settings ' .. ARGV[1])
return {'ok', v}
