-- The failure rule's disable, with its notice, in one step. The document
-- is the C side's (webhook_disable: enabled false, disabledAt,
-- disabledReason, revision + 1); it is stored only if the webhook is
-- still enabled at the revision it was built from, so replicas racing on
-- one webhook make one disable and one notice.
-- KEYS[1] {pw}:webhooks  KEYS[2] {pw}:version  KEYS[3] {pw}:seq
-- KEYS[4] {pw}:notices  KEYS[5] {pw}:outbox
-- ARGV[1] id  ARGV[2] channel  ARGV[3] the revision it was built from
-- ARGV[4] the disabled document  ARGV[5] the notice's stored fields
-- (notice.h) or "" for none  ARGV[6] the disable's time ms
--
-- Like every write it INCRs {pw}:version and PUBLISHes ("<version> webhook
-- <id> put <the disabled document>", store_hooks.h). The notice id is
-- "<webhookId>:<at ms>:<seq>": the webhook id before the first ':' is the
-- notice's Kafka key (outbox_claim.lua).
-- Answers {"disabled", version, notice id or ""}, {"inactive"} (deleted or
-- already disabled), {"conflict", the stored document} (written since:
-- build again from it) or {"unreadable"}.

local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  return {'inactive'}
end
local ok, doc = pcall(cjson.decode, cur)
if not ok or type(doc) ~= 'table' then
  return {'unreadable'}
end
if doc.enabled ~= true then
  return {'inactive'}
end
if (tonumber(doc.revision) or 0) ~= tonumber(ARGV[3]) then
  return {'conflict', cur}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[2], v .. ' webhook ' .. ARGV[1] .. ' put ' .. ARGV[4])
local nid = ''
if ARGV[5] ~= '' then
  nid = ARGV[1] .. ':' .. ARGV[6] .. ':' .. redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[4], nid, ARGV[5])
  redis.call('ZADD', KEYS[5], ARGV[6], nid)
end
return {'disabled', v, nid}
