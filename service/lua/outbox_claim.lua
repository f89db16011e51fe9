-- Claims due notices the same way; a notice id begins with its webhook id,
-- the Kafka key.
-- KEYS[1] {pw}:outbox  KEYS[2] {pw}:notices
-- ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max
-- Answers {id, notice, key, ...}.

local now = tonumber(ARGV[1])
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,
                       tonumber(ARGV[3]))
for _, nid in ipairs(due) do
  local notice = redis.call('HGET', KEYS[2], nid)
  if notice then
    local key = string.match(nid, '^([^:]+):') or ''
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), nid)
    out[#out + 1] = nid
    out[#out + 1] = notice
    out[#out + 1] = key
  else
    redis.call('ZREM', KEYS[1], nid)
  end
end
return out
