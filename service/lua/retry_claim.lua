-- Claims due retries: each is pushed to now + lease (the lease), or dropped
-- when its job is gone or its webhook is deleted or disabled.
-- KEYS[1] {pw}:retries  KEYS[2] {pw}:retry-jobs  KEYS[3] {pw}:webhooks
-- ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max
-- Answers {id, job, "", ...}.

local now = tonumber(ARGV[1])
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,
                       tonumber(ARGV[3]))
for _, rid in ipairs(due) do
  local job = redis.call('HGET', KEYS[2], rid)
  local wid = string.match(rid, '^([^:]+):')
  local live = false
  if job and wid then
    local raw = redis.call('HGET', KEYS[3], wid)
    if raw then
      local ok, doc = pcall(cjson.decode, raw)
      live = ok and type(doc) == 'table' and doc.enabled == true
    end
  end
  if live then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), rid)
    out[#out + 1] = rid
    out[#out + 1] = job
    out[#out + 1] = ''
  else
    redis.call('ZREM', KEYS[1], rid)
    redis.call('HDEL', KEYS[2], rid)
  end
end
return out
