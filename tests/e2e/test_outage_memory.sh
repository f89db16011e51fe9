#!/bin/sh
# Memory is bounded while Redis is away (issue 12 part 3): Redis frozen
# (SIGSTOP of this run's redis-server), three failing webhooks and a
# healthy one (whose successes would let intake go on), 600 events of
# 256 KB (about 150 MB held if intake did not stop). Outcomes cannot be recorded, so the jobs holding them count
# toward PROMO_WEBHOOKS_MAX_IN_FLIGHT (200) and intake stops there:
# resident memory stays under the README's bound computed from the
# settings; when Redis returns every outcome is recorded (every failure
# counted toward the rule, every offset committed).
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.outage.$$
GROUP=e2e-outage-$$
REDIS_DB=15
N=600
MAX=40
PREFETCH_KB=8192
FETCH_MAX=4194304

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:2" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
set_rule "$RECV_PORT" /f 500
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000
export PROMO_WEBHOOKS_MAX_IN_FLIGHT=$MAX
export PROMO_WEBHOOKS_RDKAFKA_QUEUED_MAX_MESSAGES_KBYTES=$PREFETCH_KB
export PROMO_WEBHOOKS_RDKAFKA_FETCH_MAX_BYTES=$FETCH_MAX
start_service svc
HOOKS=""
for k in 1 2 3; do
	create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/f"
	HOOKS="$HOOKS $HOOK_ID"
done
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/ok"
wait_for 5 "the registry cache" metric_is promo_webhooks_registry_webhooks 4

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$SVC_PID/status"
}
# README, "Backpressure": the fixed part of the bound.
base_kb=$((64 * 1024))

info "generating $N events of 256 KB"
pad=$(head -c 262144 /dev/zero | tr '\0' 'p')
i=1
: >"$T/big.in"
while [ "$i" -le "$N" ]; do
	printf 'acme|{"specversion":"1.0","id":"o-%s","source":"/promo/test","type":"Product.ImportCompleted","time":"2026-11-28T09:00:00Z","companyid":"acme","data":{"importId":"o-%s","pad":"%s"}}\n' \
		"$i" "$i" "$pad" >>"$T/big.in"
	i=$((i + 1))
done
E=$((262144 + 256))

rpid=$(cat "$PW_TEST_STATE/redis/redis.pid")
resume_redis() { kill -CONT "$rpid" 2>/dev/null || true; }
trap 'resume_redis; cleanup' EXIT
info "freezing Redis"
kill -STOP "$rpid"
produce_lines "$T/big.in"

# The README's bound: 64 MiB, MAX_IN_FLIGHT x (2 E + 16 KiB), the
# prefetch (queued.max.messages.kbytes) and one fetch (fetch.max.bytes).
bound_kb=$((base_kb + MAX * (2 * E + 16384) / 1024 + PREFETCH_KB + FETCH_MAX / 1024))
held_up() {
	v=$(metric promo_webhooks_events_in_flight)
	[ -n "$v" ] && [ "$v" -ge $((MAX / 4 - 2)) ]
}
wait_for 60 "intake to reach the bound" held_up
max_kb=0
t_end=$(($(date +%s) + 8))
while [ "$(date +%s)" -lt "$t_end" ]; do
	r=$(rss_kb)
	[ "$r" -gt "$max_kb" ] && max_kb=$r
	sleep 0.2
done
consumed=$(metric promo_webhooks_events_consumed_total)
info "RSS: base ${base_kb} kB, max ${max_kb} kB during the outage, bound ${bound_kb} kB; consumed $consumed of $N"
[ "$consumed" -lt "$N" ] || fail "every event was taken in although no outcome could be recorded"
[ "$max_kb" -le "$bound_kb" ] || fail "resident memory ${max_kb} kB over the bound ${bound_kb} kB"

resume_redis
info "Redis resumed"
wait_for 180 "every offset committed" all_committed
for W in $HOOKS; do
	counted=$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard "{pw}:failures:$W")
	[ "$counted" -eq "$N" ] || fail "webhook $W: want $N failures recorded, got $counted"
done
r=$(rss_kb)
[ "$r" -le "$bound_kb" ] || fail "resident memory ${r} kB over the bound ${bound_kb} kB after the outage"
stop_service
echo "PASS"
