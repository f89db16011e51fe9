-- A delivery put off without an attempt (its target's queue is full): a
-- retry job like any other. Its retry id begins "<webhookId>:<due ms>:" like
-- every retry id, and ends with the delivery's own name (not {pw}:seq), so
-- that the same deferral sent again because its answer was lost (Redis
-- slow or gone while the first send was carried out) names the same retry
-- and changes nothing: not a second retry chain, not a claimed retry made
-- due again.
-- KEYS[1] {pw}:retries  KEYS[2] {pw}:retry-jobs
-- ARGV[1] webhook id  ARGV[2] due ms  ARGV[3] the job  ARGV[4] its name

local rid = ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[4]
if redis.call('HSETNX', KEYS[2], rid, ARGV[3]) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[2], rid)
end
return {'ok', 0}
