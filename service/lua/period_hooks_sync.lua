-- Writes the enabled period webhooks of one company for one date kind, as
-- the scheduler of one replica sees them in its registry snapshot.
-- KEYS[1] {pw}:period-hooks:<c>:<start|end>  KEYS[2] {pw}:period-hooks-sync
-- ARGV[1] "<c>\n<start|end>" (the field of KEYS[2])  ARGV[2] the registry
-- version the hooks were read at  ARGV[3] their digest ("-" for none)
-- ARGV[4], ARGV[5], ... pairs: P ms, member "<webhookId>\n<period>\n<value>"
--
-- KEYS[2] keeps "<version>:<digest>" of the last write per field. A write
-- from an older version than the stored one (a replica whose cache lags)
-- changes nothing; one with the same digest only records its version.
-- Otherwise the set is replaced. A hook that went away needs nothing more:
-- a queued date finds no hook for it and is dropped. If a member is new
-- (a new hook, one enabled again, a changed period) the answer asks for
-- the company's dates ahead to be queued again (period_requeue.lua, in
-- chunks, so that no call holds Redis for long).
-- Answers {"ok", 1} written or already so, {"ok", 2} written and the
-- dates to queue again, {"ok", 0} older than stored.

local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local v, d = string.match(cur, '^(%d+):(.*)$')
  if v and tonumber(v) > tonumber(ARGV[2]) then
    return {'ok', 0}
  end
  if d == ARGV[3] then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
    return {'ok', 1}
  end
end
local old = {}
local l = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #l, 2 do
  old[l[i]] = tonumber(l[i + 1])
end
redis.call('DEL', KEYS[1])
local grown = false
for i = 4, #ARGV - 1, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  if old[ARGV[i + 1]] ~= tonumber(ARGV[i]) then
    grown = true
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
if grown then
  return {'ok', 2}
end
return {'ok', 1}
