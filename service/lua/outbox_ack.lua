--  KEYS[1] {pw}:outbox  KEYS[2] {pw}:notices  ARGV[1] notice id
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return {'ok', 0}
