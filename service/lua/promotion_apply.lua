-- One promotion change. The caller built the new state (ARGV[4]); this
-- decides whether it is newer than the stored one and keeps the date
-- indexes, the due queue and the expiry queue in step with it.
-- KEYS[1] {pw}:promo:<c>  KEYS[2] {pw}:promo-start:<c>  KEYS[3] {pw}:promo-end:<c>
-- KEYS[4] {pw}:period-hooks:<c>:start  KEYS[5] {pw}:period-hooks:<c>:end
-- KEYS[6] {pw}:period-due  KEYS[7] {pw}:promo-expiry
-- ARGV[1] promotion id  ARGV[2] event time ms  ARGV[3] "1" for a deletion
-- ARGV[4] the new state  ARGV[5] start ms or ""  ARGV[6] end ms or ""
-- ARGV[7] company id  ARGV[8] now ms  ARGV[9] the state's expiry (ms)
--
-- A change older than the stored state (or tombstone) is ignored; at the
-- same millisecond a tombstone wins, so that a Deleted and an Updated of
-- one instant cannot resurrect the promotion whatever order they arrive
-- in; otherwise the same time applies (a redelivered event is harmless).
-- An unreadable stored state is overwritten.
-- Only dates still ahead (S > now) are indexed: a passed date can never be
-- due again. A date that is new or moved is queued in {pw}:period-due
-- ("<start|end>\n<c>\n<x>") at S - Pmax, Pmax the longest period of the
-- company's hooks of that kind, or at once when that is already past; with
-- no such hook it is not queued (period_hooks_sync.lua queues the
-- company's dates when a hook comes). {pw}:promo-expiry gets "<c>\n<x>" at
-- ARGV[9] (period_claim.lua prunes it then). Answers {"ok", 1} applied,
-- {"ok", 0} ignored.

local id = ARGV[1]
local cur = redis.call('HGET', KEYS[1], id)
if cur then
  local ok, st = pcall(cjson.decode, cur)
  if ok and type(st) == 'table' and type(st.time) == 'number' then
    local t = tonumber(ARGV[2])
    if st.time > t or (st.time == t and st.deleted == true and ARGV[3] ~= '1') then
      return {'ok', 0}
    end
  end
end
redis.call('HSET', KEYS[1], id, ARGV[4])
local now = tonumber(ARGV[8])
local function date(kind, idx, hooks, arg)
  local m = kind .. '\n' .. ARGV[7] .. '\n' .. id
  local s = tonumber(arg)
  if ARGV[3] == '1' or not s or s <= now then
    redis.call('ZREM', idx, id)
    redis.call('ZREM', KEYS[6], m)
    return
  end
  if redis.call('ZADD', idx, 'CH', arg, id) == 0 then
    return
  end
  local top = redis.call('ZREVRANGE', hooks, 0, 0, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', KEYS[6], m)
  else
    redis.call('ZADD', KEYS[6], string.format('%.0f', s - tonumber(top[2])), m)
  end
end
date('start', KEYS[2], KEYS[4], ARGV[5])
date('end', KEYS[3], KEYS[5], ARGV[6])
redis.call('ZADD', KEYS[7], ARGV[9], ARGV[7] .. '\n' .. id)
return {'ok', 1}
