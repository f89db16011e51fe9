-- One promotion change. The caller built the new state (ARGV[4]); this
-- decides whether it is newer than the stored one and keeps the two date
-- indexes in step with it.
-- KEYS[1] {pw}:promo:<c>  KEYS[2] {pw}:promo-start:<c>  KEYS[3] {pw}:promo-end:<c>
-- KEYS[4] {pw}:promo-fresh  KEYS[5] {pw}:promo-gen
-- ARGV[1] promotion id  ARGV[2] event time ms  ARGV[3] "1" for a deletion
-- ARGV[4] the new state  ARGV[5] start ms or ""  ARGV[6] end ms or ""
-- ARGV[7] the {pw}:promo-fresh member: "<companyId>\n<promotionId>"
--
-- A change older than the stored state (or tombstone) is ignored; at the
-- same millisecond a tombstone wins, so that a Deleted and an Updated of
-- one instant cannot resurrect the promotion whatever order they arrive
-- in; otherwise the same time applies (a redelivered event is harmless).
-- An unreadable stored state is overwritten. A date that is new or moved
-- puts the promotion in {pw}:promo-fresh, scored with the next {pw}:promo-gen,
-- for the scheduler (an S that lands inside a window already open is
-- found there, not by a pass's range query). Answers {"ok", 1} applied,
-- {"ok", 0} ignored.

local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, st = pcall(cjson.decode, cur)
  if ok and type(st) == 'table' and type(st.time) == 'number' then
    local t = tonumber(ARGV[2])
    if st.time > t or (st.time == t and st.deleted == true and ARGV[3] ~= '1') then
      return {'ok', 0}
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
local moved = 0
if ARGV[5] ~= '' then
  moved = moved + redis.call('ZADD', KEYS[2], 'CH', ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if ARGV[6] ~= '' then
  moved = moved + redis.call('ZADD', KEYS[3], 'CH', ARGV[6], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
if moved > 0 then
  redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[5]), ARGV[7])
end
return {'ok', 1}
