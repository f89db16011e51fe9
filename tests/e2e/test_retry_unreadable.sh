#!/bin/sh
# A retry job that cannot be decoded (a foreign writer, a format from
# another version) is removed from Redis under its claim instead of being
# leased again at the end of every lease forever: gone from {pw}:retries,
# {pw}:retry-jobs and {pw}:retry-claims, counted once in
# promo_webhooks_retry_jobs_unreadable_total, logged once at error level
# with its retry id (escaped); the valid retries claimed around it are
# still delivered.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.retryunreadable.$$
GROUP=e2e-retryunreadable-$$
REDIS_DB=17
TYPE=CouponCodes.ImportCompleted
R="redis-cli -p $REDIS_PORT -n $REDIS_DB"

$R flushdb >/dev/null
create_topics "$TOPIC:2" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
# Retries due 3 s after a failure; a short lease, so a job left in Redis
# would come back several times while the test watches.
export PROMO_WEBHOOKS_RETRY_SCHEDULE=3
export PROMO_WEBHOOKS_RETRY_LEASE_MS=500
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=10
start_service svc
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/r1"
R1=$HOOK_ID
wait_for 5 "the registry cache to hold the webhook" metric_is promo_webhooks_registry_webhooks 1

info "two failed deliveries leave two valid retries pending"
set_rule "$RECV_PORT" /r1 500
produce_events acme $TYPE x 2
wait_for 30 "two first attempts at r1" recorded_at_least /r1 2
wait_for 10 "two retries pending" zcard_is '{pw}:retries' 2

info "an undecodable job of a live webhook, due now, between them"
# The id starts with the webhook id (the claim checks that webhook) and
# carries a quote and a space: the log must escape them.
BAD="$R1:0:bad \"job\""
now_ms=$(($(date +%s) * 1000))
$R zadd '{pw}:retries' "$now_ms" "$BAD" >/dev/null
$R hset '{pw}:retry-jobs' "$BAD" 'not a retry job' >/dev/null
set_rule "$RECV_PORT" /r1 200
wait_for 30 "the unreadable job counted" metric_is promo_webhooks_retry_jobs_unreadable_total 1
[ "$($R zscore '{pw}:retries' "$BAD")" = "" ] || fail "the unreadable job is still in {pw}:retries"
[ "$($R hexists '{pw}:retry-jobs' "$BAD")" = 0 ] || fail "the unreadable job is still in {pw}:retry-jobs"
[ "$($R hexists '{pw}:retry-claims' "$BAD")" = 0 ] || fail "the unreadable job's claim is still in {pw}:retry-claims"

info "the valid retries around it are delivered"
wait_for 30 "both retries at r1" recorded_at_least /r1 4
wait_for 10 "no retry pending" zcard_is '{pw}:retries' 0
[ "$($R hlen '{pw}:retry-jobs')" = 0 ] || fail "retry jobs left: $($R hkeys '{pw}:retry-jobs')"
api GET "/v1/companies/acme/webhooks/$R1/attempts"
jq -e '[.items[] | select(.attempt == 2 and .status == 200)] | length == 2' "$T/resp" >/dev/null ||
	fail "want two successful retries in the attempt log: $(cat "$T/resp")"

info "logged once, at error level, with its retry id"
# Several lease periods: a job left in Redis would have been claimed,
# logged and counted again by now.
deadline=$(($(date +%s) + 2))
while [ "$(date +%s)" -lt "$deadline" ]; do
	sleep 0.5
done
lines=$(jq -c 'select(.msg == "unreadable retry job removed")' "$SVC_LOG")
[ "$(printf '%s\n' "$lines" | grep -c .)" = 1 ] || fail "want one log line, got: $lines"
printf '%s\n' "$lines" | jq -e --arg id "$BAD" '.level == "error" and .retry == $id and (.reason | length > 0)' >/dev/null ||
	fail "log line: $lines"
metric_is promo_webhooks_retry_jobs_unreadable_total 1 || fail "counted again: $(metric promo_webhooks_retry_jobs_unreadable_total)"
stop_service
echo "PASS"
