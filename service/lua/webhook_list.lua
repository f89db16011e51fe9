--  KEYS[1] {pw}:company:<c>:webhooks  KEYS[2] {pw}:webhooks
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local d = redis.call('HGET', KEYS[2], id)
  if d then
    out[#out + 1] = d
  end
end
return out
