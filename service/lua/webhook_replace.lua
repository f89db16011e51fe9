-- KEYS[1] {pw}:webhooks  KEYS[2] {pw}:company:<c>:webhooks  KEYS[3] {pw}:version
-- KEYS[4] {pw}:failures:<id>
-- ARGV[1] id  ARGV[2] document  ARGV[3] channel  ARGV[4] expected revision
-- ARGV[5] "1" to clear the failure history
-- Publishes "<version> webhook <id> put <document>" (store_hooks.h).

if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then
  return {'not_found'}
end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  return {'not_found'}
end
local ok, doc = pcall(cjson.decode, cur)
if not ok or type(doc) ~= 'table' then
  return {'conflict'}
end
local rev = tonumber(doc.revision) or 0
if rev ~= tonumber(ARGV[4]) then
  return {'conflict'}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[5] == '1' then
  redis.call('DEL', KEYS[4])
end
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[3], v .. ' webhook ' .. ARGV[1] .. ' put ' .. ARGV[2])
return {'ok', v}
