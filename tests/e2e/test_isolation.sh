#!/bin/sh
# A slow or dead target never stalls the others: with one target hanging,
# a healthy target of the same events gets all of them promptly; the hung
# target's backlog beyond its bounds is parked in Redis (not held in
# memory), and once the target recovers it gets every event too.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.isolation.$$
GROUP=e2e-isolation-$$
REDIS_DB=16
TYPE=Product.ImportCompleted
N=300

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
# Two receivers, so the two targets are distinct scheme://host:port keys.
start_receiver hung --rule /h=200,delay_ms=60000
HUNG_PORT=$RECV_PORT
HUNG_LOG=$RECV_LOG
start_receiver healthy
OK_PORT=$RECV_PORT
OK_LOG=$RECV_LOG
service_env
export PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET=4
export PROMO_WEBHOOKS_DELIVERY_TIMEOUT_MS=2000
export PROMO_WEBHOOKS_RETRY_SCHEDULE=1,1,1,1,1,1,1,1
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000
start_service svc
create_webhook acme $TYPE "http://127.0.0.1:$HUNG_PORT/h"
create_webhook acme $TYPE "http://127.0.0.1:$OK_PORT/ok"
wait_for 5 "the registry cache" metric_is promo_webhooks_registry_webhooks 2

info "producing $N events for both webhooks in two bursts; one target hangs"
produce_events acme $TYPE iso1 $((N / 2))
RECV_LOG=$OK_LOG
wait_for 30 "the first burst at the healthy target" recorded_at_least /ok $((N / 2))
# Saturation is a queue that does not drain for a second (a fast target's
# burst is not): the hung target's queue must be that old before the
# second burst.
sleep 1.5
produce_events acme $TYPE iso2 $((N / 2))
wait_for 30 "all $N events at the healthy target while the other hangs" recorded_at_least /ok $N
parked=$(metric promo_webhooks_deliveries_parked_total)
info "parked: $parked; hung target attempts so far: $(wc -l <"$HUNG_LOG")"
[ "${parked:-0}" -ge $((N / 2)) ] || fail "the second burst for the saturated target was not parked ($parked)"

info "the hung target recovers: it gets every event too"
set_rule "$HUNG_PORT" /h 200 0
RECV_LOG=$HUNG_LOG
distinct_at_hung() {
	[ "$(jq -r 'select(.status == 200 and (.delay_ms // 0) == 0) | .headers["webhook-id"]' "$HUNG_LOG" | sort -u | wc -l)" -ge $N ]
}
wait_for 180 "$N distinct events at the recovered target" distinct_at_hung
wait_for 60 "offsets committed" all_committed
[ "$(jq -r '.headers["webhook-id"]' "$OK_LOG" | sort -u | wc -l)" -eq $N ] || fail "the healthy target missed events"
stop_service
echo "PASS"
