--  KEYS[1] {pw}:retries  KEYS[2] {pw}:outbox
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
