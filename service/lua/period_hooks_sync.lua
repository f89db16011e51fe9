-- Writes the enabled period webhooks of one company for one date kind, as
-- the scheduler of one replica sees them in its registry snapshot, and
-- queues the company's dates again when a hook came or its period grew.
-- KEYS[1] {pw}:period-hooks:<c>:<start|end>  KEYS[2] {pw}:period-hooks-sync
-- KEYS[3] {pw}:promo-<start|end>:<c>  KEYS[4] {pw}:period-due
-- ARGV[1] "<c>\n<start|end>" (the field of KEYS[2])  ARGV[2] the registry
-- version the hooks were read at  ARGV[3] their digest ("-" for none)
-- ARGV[4] now ms  ARGV[5] the due member prefix "<start|end>\n<c>\n"
-- ARGV[6], ARGV[7], ... pairs: P ms, member "<webhookId>\n<period>\n<value>"
--
-- KEYS[2] keeps "<version>:<digest>" of the last write per field. A write
-- from an older version than the stored one (a replica whose cache lags)
-- changes nothing; one with the same digest only records its version.
-- Otherwise the set is replaced, and if a member is new (a new hook, one
-- enabled again, a changed period) every date of the company ahead of now
-- is queued at S - Pmax unless it is queued earlier already (ZADD LT):
-- O(the company's dates ahead), on a change only. A hook that went away
-- needs nothing: a queued date finds no hook for it and is dropped.
-- Answers {"ok", 1} written or already so, {"ok", 0} older than stored.

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
local grown, pmax = false, nil
for i = 6, #ARGV - 1, 2 do
  local p = tonumber(ARGV[i])
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  if old[ARGV[i + 1]] ~= p then
    grown = true
  end
  if not pmax or p > pmax then
    pmax = p
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
if grown then
  -- one ZADD per 200 dates: the call, not the insert, is what costs
  local r = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[4], '+inf', 'WITHSCORES')
  local batch = {}
  for i = 1, #r, 2 do
    batch[#batch + 1] = string.format('%.0f', tonumber(r[i + 1]) - pmax)
    batch[#batch + 1] = ARGV[5] .. r[i]
    if #batch >= 400 or i + 2 > #r then
      redis.call('ZADD', KEYS[4], 'LT', unpack(batch))
      batch = {}
    end
  end
end
return {'ok', 1}
