#!/bin/sh
# Retries and first attempts share PROMO_WEBHOOKS_MAX_IN_FLIGHT (found by
# e2e_backpressure in CI: parked deliveries claimed back as retries took
# the in-flight count to 4,120 of 4,096).
#   * Deliveries in flight, first attempts and claimed retries together,
#     sampled every 0.1 s, never exceed the bound (20 here), also while due
#     retries wait and first attempts fill the bound.
#   * Due retries are not shut out by a backlog of first attempts: while
#     retries wait, intake leaves their share of the bound (a quarter) free,
#     so all of them are delivered while most of the backlog still waits.
#
# Webhook A (its own receiver) fails 12 events at once; its receiver then
# answers 200 after 1.5 s, so each retry holds a slot for 1.5 s. Webhook B
# (another receiver, 1.5 s answers) gets a backlog of 300 events before
# A's retries fall due (5 s after the failures).
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.retryshare.$$
GROUP=e2e-retryshare-$$
REDIS_DB=18
TYPE=Product.ImportCompleted
MAX_IN_FLIGHT=20
NA=12
NB=300

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:2" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver ra --rule /a=500
PORT_A=$RECV_PORT
LOG_A=$RECV_LOG
start_receiver rb --rule /b=200,delay_ms=1500
PORT_B=$RECV_PORT
LOG_B=$RECV_LOG
service_env
export PROMO_WEBHOOKS_MAX_IN_FLIGHT=$MAX_IN_FLIGHT
export PROMO_WEBHOOKS_RETRY_SCHEDULE=5
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000
start_service svc
create_webhook ca $TYPE "http://127.0.0.1:$PORT_A/a"
create_webhook cb $TYPE "http://127.0.0.1:$PORT_B/b"
wait_for 5 "the registry cache to hold 2 webhooks" metric_is promo_webhooks_registry_webhooks 2

(
	while kill -0 "$SVC_PID" 2>/dev/null; do
		f=$(metric promo_webhooks_deliveries_in_flight)
		echo "${f:-?}" >>"$T/samples"
		sleep 0.1
	done
) &
PIDS="$PIDS $!"

lines_at_least() {
	[ "$(wc -l <"$1")" -ge "$2" ]
}

info "$NA first attempts to A fail; its retries fall due in 5 s"
produce_events ca $TYPE a "$NA"
wait_for 30 "$NA failed attempts at A" lines_at_least "$LOG_A" "$NA"
set_rule "$PORT_A" /a 200 1500
info "a backlog of $NB events for B, answered after 1.5 s each"
produce_events cb $TYPE b "$NB"
wait_for 60 "A's $NA retries" lines_at_least "$LOG_A" $((NA * 2))
done_b=$(wc -l <"$LOG_B")
info "all of A's retries arrived when B had $done_b of $NB"
wait_for 120 "B's $NB deliveries" lines_at_least "$LOG_B" "$NB"
wait_for 60 "all offsets of $GROUP committed" all_committed

max_flight=$(awk '$1 != "?" && $1 + 0 > m { m = $1 + 0 } END { print m + 0 }' "$T/samples")
info "max in flight sampled $max_flight ($(wc -l <"$T/samples") samples)"
[ "$max_flight" -le "$MAX_IN_FLIGHT" ] ||
	fail "$max_flight deliveries in flight, above the bound $MAX_IN_FLIGHT"
# B's backlog must have filled the bound, else nothing was tested.
[ "$max_flight" -ge $((MAX_IN_FLIGHT * 3 / 4)) ] ||
	fail "at most $max_flight deliveries in flight; the bound $MAX_IN_FLIGHT was never approached"
# B runs about 13 a second: A's retries (due 5 s in, two 1.5 s rounds at
# most with a quarter of the bound) arrive in the first half of the backlog.
[ "$done_b" -le $((NB / 2)) ] ||
	fail "A's retries arrived only after $done_b of B's $NB deliveries: shut out by the backlog"
retried=$(jq -r 'select(.path == "/a") | .headers["webhook-id"]' "$LOG_A" | sort | uniq -c | awk '$1 == 2' | wc -l)
[ "$retried" -eq "$NA" ] || fail "$retried of A's $NA events attempted twice"
stop_service
echo "PASS"
