#!/bin/sh
# A notice whose delivery report arrives during the final producer flush at
# shutdown is removed from the outbox before the process exits (issue 12
# part 4), so no other replica publishes it again when its lease ends.
#
# linger.ms=4000 holds the produced notice in librdkafka until the flush at
# shutdown sends it at once: SIGTERM comes as soon as the notice is handed
# to the producer, so its report can only come during that flush.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.noticedrain.$$
GROUP=e2e-noticedrain-$$
REDIS_DB=12
TYPE=Promotion.Updated

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:1" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
export PROMO_WEBHOOKS_RDKAFKA_LINGER_MS=4000
start_service svc
set_email acme ops@acme.example
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/k"
W=$HOOK_ID
set_rule "$RECV_PORT" /k 500
wait_for 5 "the registry cache" metric_is promo_webhooks_registry_webhooks 1

: >"$T/events.in"
for i in 1 2 3; do
	event_line acme $TYPE "k-$i" "{\"promotionId\":\"P-$i\"}" >>"$T/events.in"
done
produce_lines "$T/events.in"
wait_for 30 "the notice handed to the producer" grep -q '"publishing webhook disabled notice"' "$SVC_LOG"
kill -TERM "$SVC_PID"
rc=0
wait "$SVC_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "the service exited $rc after SIGTERM"

# The report came during the final flush: published after the consumer
# began leaving the group (the proof that this run tests the exit path).
leave=$(grep -n '"leaving the consumer group"' "$SVC_LOG" | head -n 1 | cut -d: -f1)
pub=$(grep -n '"webhook disabled notice published"' "$SVC_LOG" | head -n 1 | cut -d: -f1)
[ -n "$leave" ] && [ -n "$pub" ] || fail "log lacks the leave or the publish line"
[ "$pub" -gt "$leave" ] || fail "the notice was published before shutdown began; the test did not reach the final flush"
[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard {pw}:outbox)" = 0 ] ||
	fail "the published notice is still in the outbox after exit: another replica would publish it again"
grep -q '"waiting for notice acknowledgements before exit"' "$SVC_LOG" ||
	fail "the exit did not wait for the acknowledgement"
wait_for 30 "the notice on the email topic" topic_has "$TOPIC.email" 1 "$W"
[ "$(notices_for "$W")" -eq 1 ] || fail "want exactly 1 notice, got $(notices_for "$W")"
echo "PASS"
