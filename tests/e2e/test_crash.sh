#!/bin/sh
# At least once across a crash: 10,000 events for two webhooks, the service
# killed with SIGKILL while delivering, then restarted. Every (event,
# webhook) pair must have been delivered at least once: 20,000 distinct
# webhook-ids at the receiver, and the group's offsets at the end of the log.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.crash.$$
GROUP=e2e-crash-$$
REDIS_DB=2
N=10000

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
# Slow enough that the kill lands in the middle of the run.
start_receiver recv --rule /one=200,delay_ms=5 --rule /two=200,delay_ms=5
service_env
export PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET=8
start_service first
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/one"
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/two"
wait_for 5 "the registry cache to hold 2 webhooks" \
	sh -c "[ \"\$(curl -s $API/metrics | awk '\$1 == \"promo_webhooks_registry_webhooks\" { print \$2 }')\" = 2 ]"

info "producing $N events"
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++)
	printf "acme|{\"specversion\":\"1.0\",\"id\":\"ev-%d\",\"source\":\"/promo\",\"type\":\"Product.ImportCompleted\",\"time\":\"2026-11-28T09:00:00Z\",\"companyid\":\"acme\",\"data\":{\"seq\":%d}}\n", i, i }' >"$T/events.in"
produce_lines "$T/events.in"

info "killing the service with SIGKILL while it delivers"
wait_for 60 "a few thousand deliveries" sh -c "[ \$(wc -l <$RECV_LOG) -ge 3000 ]"
kill -KILL "$SVC_PID"
wait "$SVC_PID" 2>/dev/null || true
before=$(wc -l <"$RECV_LOG")
info "killed after $before deliveries; restarting"
[ "$before" -lt $((2 * N)) ] || fail "the kill came after the run had finished; nothing was tested"

start_service second
wait_for 240 "all offsets of $GROUP committed" all_committed
# Deliveries parked in Redis while the target was saturated count as
# recorded for the offsets; they arrive when their retry job comes due.
all_pairs_delivered() {
	[ "$(jq -r '.headers["webhook-id"]' "$RECV_LOG" | sort -u | wc -l)" -ge $((2 * N)) ]
}
wait_for 240 "every (event, webhook) pair delivered" all_pairs_delivered
# A parked job the killed service had claimed stays leased for the delivery
# timeout (10 s) + 30 s from its claim, then this service claims it again:
# the set empties within that lease, plus a claim tick and a delivery.
wait_for 60 "no retry pending" metric_is promo_webhooks_retries_pending 0

distinct=$(jq -r '.headers["webhook-id"]' "$RECV_LOG" | sort -u | wc -l)
total=$(wc -l <"$RECV_LOG")
info "deliveries: $total, distinct webhook-ids: $distinct"
[ "$distinct" -eq $((2 * N)) ] || fail "distinct webhook-ids = $distinct, want $((2 * N))"
# Every event reached both webhooks: per path, N distinct ids.
for path in /one /two; do
	d=$(jq -r --arg p $path 'select(.path == $p) | .headers["webhook-id"]' "$RECV_LOG" | sort -u | wc -l)
	[ "$d" -eq $N ] || fail "$path got $d distinct events, want $N"
done
stop_service
echo "PASS"
