#!/bin/sh
# Two replicas in one consumer group against one failing target: the
# webhook is disabled once and exactly one notice is published, whichever
# replica's failure crossed the threshold.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.replicas.$$
GROUP=e2e-replicas-$$
REDIS_DB=5
TYPE=Promotion.Created

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
start_service one
API_ONE=$API
start_service two
API_TWO=$API
set_email acme ops@acme.example
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/fail"
W=$HOOK_ID
# A slow failure, so that both replicas have attempts in flight at once.
set_rule "$RECV_PORT" /fail 500 200
API=$API_ONE
wait_for 5 "replica one's cache" metric_is promo_webhooks_registry_webhooks 1
API=$API_TWO
wait_for 5 "replica two's cache" metric_is promo_webhooks_registry_webhooks 1
# Both replicas must own partitions before the events arrive.
wait_for 30 "both replicas assigned" sh -c "[ \$(grep -h '\"partition assigned\"' $T/one.log $T/two.log | jq -r .partition | sort -u | wc -l) -ge 4 ] && grep -q '\"partition assigned\"' $T/one.log && grep -q '\"partition assigned\"' $T/two.log"

info "producing 40 events over 4 partitions"
: >"$T/events.in"
i=1
while [ $i -le 40 ]; do
	# Distinct keys spread the events over the partitions.
	event_line "k$i" $TYPE "e-$i" "{\"promotionId\":\"P-$i\"}" | sed 's/"companyid":"k[0-9]*"/"companyid":"acme"/' >>"$T/events.in"
	i=$((i + 1))
done
produce_lines "$T/events.in"
wait_for 60 "offsets committed" all_committed
webhook_json acme "$W" | jq -e '.enabled == false' >/dev/null || fail "the webhook was not disabled"
one=$(curl -s "$API_ONE/metrics" | awk '$1 == "promo_webhooks_webhooks_disabled_total" { print $2 }')
two=$(curl -s "$API_TWO/metrics" | awk '$1 == "promo_webhooks_webhooks_disabled_total" { print $2 }')
info "disables: replica one $one, replica two $two; attempts: $(recorded /fail)"
[ $((one + two)) -eq 1 ] || fail "the webhook was disabled $((one + two)) times, want 1"
[ "$(jq -r .path "$RECV_LOG" | sort -u)" = /fail ] || fail "unexpected paths"
wait_for 30 "the notice published" topic_has "$TOPIC.email" 1
API=$API_ONE
wait_for 10 "the outbox empty" metric_is promo_webhooks_notices_pending 0
[ "$(notices_for "$W")" -eq 1 ] || fail "want exactly 1 notice, got $(notices_for "$W")"
# The race was real: both replicas made failed attempts.
grep -q '"delivery failed"' "$T/one.log" || fail "replica one made no attempt"
grep -q '"delivery failed"' "$T/two.log" || fail "replica two made no attempt"
echo "PASS"
