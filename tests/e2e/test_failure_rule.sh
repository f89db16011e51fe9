#!/bin/sh
# The failure rule end to end (contract section 5), with no retries so that
# every event is exactly one attempt:
#   2 failures then a success: still enabled; a 3rd failure inside the
#   window: disabled, exactly one notice with the contract's fields; a
#   disabled webhook receives nothing; no notification email: disabled, no
#   notice; re-enabling clears the history (one more failure does not
#   disable); 2 failures, then past the window 1 failure: still enabled.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.failrule.$$
GROUP=e2e-failrule-$$
REDIS_DB=3
TYPE=Product.ImportCompleted

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=3
export PROMO_WEBHOOKS_FAILURE_WINDOW=60
start_service first

set_email acme ops@acme.example
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/w1"
W1=$HOOK_ID
create_webhook globex $TYPE "http://127.0.0.1:$RECV_PORT/w2"
W2=$HOOK_ID
wait_for 5 "the registry cache to hold 2 webhooks" metric_is promo_webhooks_registry_webhooks 2
set_rule "$RECV_PORT" /w1 500
set_rule "$RECV_PORT" /w2 503

info "two failures, then a success: still enabled"
produce_events acme $TYPE a 2
wait_for 30 "2 attempts at w1" recorded_at_least /w1 2
wait_for 30 "offsets committed" all_committed
is_enabled acme "$W1" || fail "w1 disabled after 2 failures"
set_rule "$RECV_PORT" /w1 200
produce_events acme $TYPE b 1
wait_for 30 "3 attempts at w1" recorded_at_least /w1 3
wait_for 30 "offsets committed" all_committed
is_enabled acme "$W1" || fail "w1 disabled after 2 failures and a success"

info "the attempt log: newest first, with the contract's fields"
api GET "/v1/companies/acme/webhooks/$W1/attempts"
[ "$HTTP_STATUS" = 200 ] || fail "GET attempts: HTTP $HTTP_STATUS"
# Successes are logged in batches: wait for the third entry.
wait_for 5 "3 entries in the attempt log" sh -c "curl -s -H 'Authorization: Bearer $TOKEN' $API/v1/companies/acme/webhooks/$W1/attempts | jq -e '.items | length == 3' >/dev/null"
api GET "/v1/companies/acme/webhooks/$W1/attempts"
jq -e '.items[0].eventId == "b-1" and .items[0].status == 200 and .items[0].error == null
	and .items[0].attempt == 1 and (.items[0].durationMs | type) == "number"
	and (.items[0].at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))
	and .items[1].status == 500 and (.items[1].error | length) > 0
	and .items[1].responseBody == "{\"error\":\"pw-receiver answered 500\"}"
	and (.items[0] | has("responseBody") | not)
	and ([.items[1].eventId, .items[2].eventId] | sort) == ["a-1", "a-2"]' "$T/resp" >/dev/null ||
	fail "attempt log is not as expected: $(cat "$T/resp")"

info "a third failure inside the window: disabled, one notice"
set_rule "$RECV_PORT" /w1 500
produce_events acme $TYPE c 1
wait_for 30 "w1 disabled" webhook_disabled acme "$W1"
webhook_json acme "$W1" | jq -e '.disabledAt != null and (.disabledReason | length) > 0' >/dev/null ||
	fail "disabled webhook lacks disabledAt/disabledReason: $(cat "$T/resp")"
wait_for 30 "the notice published" topic_has "$TOPIC.email" 1
wait_for 10 "the outbox empty" metric_is promo_webhooks_notices_pending 0
[ "$(notices_for "$W1")" -eq 1 ] || fail "want exactly 1 notice for w1, got $(notices_for "$W1")"
email_notices | jq -c --arg k "$W1" 'select(.key == $k) | .payload | fromjson' >"$T/notice.json"
jq -e --arg w "$W1" --arg t "http://127.0.0.1:$RECV_PORT/w1" '
	.type == "WebhookDisabled" and .to == "ops@acme.example"
	and (.subject | length) > 0 and (.text | length) > 0
	and .companyId == "acme" and .webhookId == $w and .event == "Product.ImportCompleted"
	and .target == $t and (.disabledAt | test("^[0-9]{4}-"))
	and (.failures | length) == 3
	and all(.failures[]; (.at | test("^[0-9]{4}-")) and .status == 500 and has("error"))' "$T/notice.json" >/dev/null ||
	fail "notice lacks the contract's fields: $(cat "$T/notice.json")"

info "a disabled webhook receives nothing"
before=$(recorded /w1)
produce_events acme $TYPE d 3
wait_for 30 "offsets committed" all_committed
[ "$(recorded /w1)" -eq "$before" ] || fail "the disabled webhook received a delivery"

info "no notification email: disabled, no notice"
produce_events globex $TYPE g 3
wait_for 30 "w2 disabled" webhook_disabled globex "$W2"
wait_for 30 "offsets committed" all_committed
wait_for 10 "the outbox empty" metric_is promo_webhooks_notices_pending 0
[ "$(notices_for "$W2")" -eq 0 ] || fail "a notice was published for a company without an email"

info "re-enabling clears the history: one more failure does not disable"
api PATCH "/v1/companies/acme/webhooks/$W1" '{"enabled":true}'
[ "$HTTP_STATUS" = 200 ] || fail "PATCH enabled: HTTP $HTTP_STATUS"
[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" exists "{pw}:failures:$W1")" = 0 ] ||
	fail "re-enabling left the failure history in place"
wait_for 5 "the cache to see w1 enabled" metric_is promo_webhooks_registry_webhooks_enabled 1
produce_events acme $TYPE e 1
wait_for 30 "w1 attempted again" recorded_at_least /w1 $((before + 1))
wait_for 30 "offsets committed" all_committed
is_enabled acme "$W1" || fail "w1 disabled by a single failure after re-enabling"
stop_service

info "two failures, then past the window one failure: still enabled"
export PROMO_WEBHOOKS_FAILURE_WINDOW=3
start_service second
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/w3"
W3=$HOOK_ID
set_rule "$RECV_PORT" /w3 500
wait_for 5 "the registry cache to hold w3" metric_is promo_webhooks_registry_webhooks 3
produce_events acme $TYPE f 2
wait_for 30 "2 attempts at w3" recorded_at_least /w3 2
wait_for 30 "offsets committed" all_committed
# The scenario is time passing: the two failures must leave the window.
sleep 4
produce_events acme $TYPE h 1
wait_for 30 "3 attempts at w3" recorded_at_least /w3 3
wait_for 30 "offsets committed" all_committed
is_enabled acme "$W3" || fail "w3 disabled although two of its failures were outside the window"
stop_service
echo "PASS"
