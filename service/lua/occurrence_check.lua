-- Re-checks a period occurrence right before one of its attempts: its
-- promotion is still there (not deleted) and its start or end date is
-- still S. Otherwise the occurrence's retry is dropped in the same step,
-- so no replica sends it again.
-- KEYS[1] {pw}:promo:<companyId>  KEYS[2] {pw}:retries
-- KEYS[3] {pw}:retry-jobs
-- ARGV[1] promotion id  ARGV[2] "start" or "end"  ARGV[3] S ms
-- ARGV[4] retry id
-- Answers {"ok", 1} (still due) or {"ok", 0} (dropped).

local raw = redis.call('HGET', KEYS[1], ARGV[1])
local live = false
if raw then
  local ok, doc = pcall(cjson.decode, raw)
  if ok and type(doc) == 'table' and doc.deleted ~= true then
    local s = doc[ARGV[2]]
    live = type(s) == 'number' and s == tonumber(ARGV[3])
  end
end
if live then
  return {'ok', 1}
end
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('HDEL', KEYS[3], ARGV[4])
return {'ok', 0}
