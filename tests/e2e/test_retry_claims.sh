#!/bin/sh
# A retry is never claimed twice into two counted attempts (issue 12 part
# 2). The retry lease (PROMO_WEBHOOKS_RETRY_LEASE_MS=1500) is shorter than
# the wait in a busy target's queue (one connection, 1 s answers), and then
# Redis is paused (SIGSTOP of this run's redis-server) for longer than the
# lease while outcomes are being recorded. Every event gets exactly its
# three attempts (first + the two retries of the schedule), each counted
# once toward the failure rule, and one retry chain each: no retry left
# behind, no duplicate attempt at the receiver.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.claims.$$
GROUP=e2e-claims-$$
REDIS_DB=14
N=5

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:1" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
set_rule "$RECV_PORT" /slow 500 1000
service_env
export PROMO_WEBHOOKS_RETRY_LEASE_MS=1500
export PROMO_WEBHOOKS_RETRY_SCHEDULE=1,1
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000
export PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET=1
export PROMO_WEBHOOKS_DELIVERY_TIMEOUT_MS=5000
start_service svc
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/slow"
W=$HOOK_ID
wait_for 5 "the registry cache" metric_is promo_webhooks_registry_webhooks 1

rpid=$(cat "$PW_TEST_STATE/redis/redis.pid")
resume_redis() { kill -CONT "$rpid" 2>/dev/null || true; }
trap 'resume_redis; cleanup' EXIT

produce_events acme Product.ImportCompleted c "$N"
# The retries queue up behind each other at the one connection: each
# waits longer than its lease before its attempt starts.
wait_for 60 "retries under way" sh -c "[ \$(jq -c 'select(.path == \"/slow\")' '$RECV_LOG' | wc -l) -ge $((N + 2)) ]"
info "pausing Redis for 4 s (the lease is 1.5 s)"
kill -STOP "$rpid"
t_end=$(($(date +%s) + 4))
while [ "$(date +%s)" -lt "$t_end" ]; do
	sleep 0.2
done
resume_redis
info "Redis resumed"

total=$((N * 3))
done_all() {
	[ "$(jq -c 'select(.path == "/slow")' "$RECV_LOG" | wc -l)" -ge "$total" ] &&
		[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard {pw}:retries)" = 0 ]
}
wait_for 120 "every chain finished" done_all
# Let anything duplicated show: the next claims come every 0.5 s.
wait_for 10 "the retry counters settle" metric_is promo_webhooks_retries_pending 0
got=$(jq -c 'select(.path == "/slow")' "$RECV_LOG" | wc -l)
[ "$got" -eq "$total" ] || fail "want $total attempts at the receiver, got $got"
for i in $(seq 1 "$N"); do
	n=$(jq -c --arg id "c-$i" 'select(.path == "/slow" and (.body | fromjson | .data.importId) == $id)' "$RECV_LOG" | wc -l)
	[ "$n" -eq 3 ] || fail "event c-$i: want 3 attempts (one chain), got $n"
done
counted=$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard "{pw}:failures:$W")
[ "$counted" -eq "$total" ] || fail "want $total failures counted toward the rule, got $counted"
[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" hlen {pw}:retry-jobs)" = 0 ] || fail "retry jobs left behind"
grep -q '"retry claimed again while its attempt runs here; not started twice"' "$SVC_LOG" ||
	fail "no retry waited longer than its lease: the test did not test the queue wait"
stop_service
echo "PASS"
