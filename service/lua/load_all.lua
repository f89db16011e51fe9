--  KEYS[1] {pw}:version  KEYS[2] {pw}:webhooks  KEYS[3] {pw}:settings
return {redis.call('GET', KEYS[1]) or '0',
        redis.call('HVALS', KEYS[2]),
        redis.call('HGETALL', KEYS[3])}
