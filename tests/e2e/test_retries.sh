#!/bin/sh
# Retries (contract section 4): a target that fails once and then succeeds
# gets the delivery on the retry with the same webhook-id, and exactly one
# failure is recorded; a retry pending across a restart is still delivered;
# the event's offset advances once its failure and retry are recorded.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.retries.$$
GROUP=e2e-retries-$$
REDIS_DB=4
TYPE=CouponCodes.ImportCompleted

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=1,1
start_service first
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/r1"
R1=$HOOK_ID
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/r2"
R2=$HOOK_ID
wait_for 5 "the registry cache to hold 2 webhooks" metric_is promo_webhooks_registry_webhooks 2

info "fails once, then succeeds on the retry with the same webhook-id"
set_rule "$RECV_PORT" /r1 500
set_rule "$RECV_PORT" /r2 200
produce_events acme $TYPE x 1
wait_for 30 "the first attempt at r1" recorded_at_least /r1 1
# The offset advances once the failure and its retry are recorded, before
# the retry runs.
wait_for 30 "offsets committed" all_committed
set_rule "$RECV_PORT" /r1 200
wait_for 30 "the retry at r1" recorded_at_least /r1 2
ids=$(jq -r 'select(.path == "/r1") | .headers["webhook-id"]' "$RECV_LOG" | sort -u | wc -l)
[ "$ids" -eq 1 ] || fail "the retry carried another webhook-id ($ids distinct)"
jq -s -e '[.[] | select(.path == "/r1")] | all((.body | fromjson | .id) == .headers["webhook-id"])' "$RECV_LOG" >/dev/null ||
	fail "the body id differs from the webhook-id header"
wait_for 10 "no retry pending" metric_is promo_webhooks_retries_pending 0
[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard "{pw}:failures:$R1")" = 1 ] ||
	fail "want exactly 1 recorded failure for r1"
api GET "/v1/companies/acme/webhooks/$R1/attempts"
jq -e '(.items | length) == 2 and .items[0].attempt == 2 and .items[0].status == 200
	and .items[1].attempt == 1 and .items[1].status == 500' "$T/resp" >/dev/null ||
	fail "attempt log after the retry: $(cat "$T/resp")"
is_enabled acme "$R1" || fail "r1 disabled after one failure"
[ "$(recorded /r2)" -eq 1 ] || fail "r2 (healthy) got $(recorded /r2) deliveries, want 1"

info "a retry pending across a restart is still delivered"
stop_service
export PROMO_WEBHOOKS_RETRY_SCHEDULE=4
start_service second
set_rule "$RECV_PORT" /r2 500
produce_events acme $TYPE y 1
wait_for 30 "the first attempt at r2" recorded_at_least /r2 2
wait_for 10 "the retry pending in Redis" metric_is promo_webhooks_retries_pending 1
stop_service
[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard {pw}:retries)" = 1 ] ||
	fail "the pending retry did not survive the shutdown"
set_rule "$RECV_PORT" /r2 200
start_service third
wait_for 30 "the retry at r2 after the restart" recorded_at_least /r2 3
ids=$(jq -r 'select(.path == "/r2") | select(.body | fromjson | .data.importId == "y-1") | .headers["webhook-id"]' "$RECV_LOG" | sort -u | wc -l)
[ "$ids" -eq 1 ] || fail "the retry after the restart carried another webhook-id"
wait_for 10 "no retry pending" metric_is promo_webhooks_retries_pending 0
stop_service
echo "PASS"
