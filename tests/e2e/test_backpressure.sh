#!/bin/sh
# Backpressure (issue 6): a backlog of 50,000 events, receivers that answer
# every POST after 2 s.
#   Intake pauses at PROMO_WEBHOOKS_MAX_IN_FLIGHT (4096, the default):
#   deliveries in flight, sampled through the drain, never exceed it, and
#   reach it (the bound, not the receivers, limits the intake).
#   Resident memory stays under MEM_BOUND_KIB (see below): the peak
#   (VmHWM) read at the end of the drain.
#   Nothing is skipped: 50,000 distinct webhook-ids at the receivers, 5,000
#   per webhook, and the group's offsets at the end of the log.
#
# 10 companies with one webhook each, each webhook on a receiver of its own:
# per-target concurrency (scheme://host:port) stays at its default 256, so
# 2,560 deliveries run at once and the rest of the 4,096 wait in the
# per-target queues; at 2 s a delivery the 50,000 drain in about 40 s.
#
# The memory bound. Each event is about 2.7 KiB on the topic (a 2.5 KiB data
# object), so the backlog is about 128 MiB: twice librdkafka's prefetch cap
# (queued.max.messages.kbytes, 64 MiB by default), so that the backlog, not
# the cap, is what an unbounded intake would hold. What a bounded service
# holds at most:
#   - librdkafka's prefetch: 64 MiB of messages plus their overhead;
#   - 4,096 deliveries in flight: the event, its rendered payload and
#     headers (~6 KiB) and a curl easy handle (its 16 KiB receive buffer
#     among the rest): ~30 KiB each, ~120 MiB;
#   - 2,560 connections, code, libraries, caches, the loop: ~30 MiB.
# Measured on Debian 12: a plateau of about 195 MiB while the backlog is
# larger than the prefetch cap, falling once it is smaller. 256 MiB covers
# it with room. A service that took the whole backlog in would hold the
# 128 MiB of events, as much again in rendered payloads, and a delivery
# each: far above the bound.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.backpressure.$$
GROUP=e2e-backpressure-$$
REDIS_DB=15
TYPE=Product.ImportCompleted
N=50000
HOOKS=10
MAX_IN_FLIGHT=4096
MEM_BOUND_KIB=$((256 * 1024))

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
i=1
while [ "$i" -le $HOOKS ]; do
	start_receiver "r$i" --rule /h=200,delay_ms=2000
	eval "PORT_$i=\$RECV_PORT"
	i=$((i + 1))
done
service_env
export PROMO_WEBHOOKS_MAX_IN_FLIGHT=$MAX_IN_FLIGHT

info "registering $HOOKS webhooks (one per company and receiver), then stopping"
start_service setup
i=1
while [ "$i" -le $HOOKS ]; do
	eval "port=\$PORT_$i"
	create_webhook "c$i" $TYPE "http://127.0.0.1:$port/h"
	i=$((i + 1))
done
wait_for 5 "the registry cache to hold $HOOKS webhooks" metric_is promo_webhooks_registry_webhooks $HOOKS
stop_service

info "producing a backlog of $N events"
awk -v n=$N -v h=$HOOKS -v t=$TYPE 'BEGIN {
	pad = sprintf("%2500s", ""); gsub(/ /, "x", pad)
	for (i = 1; i <= n; i++) {
		c = "c" (i % h + 1)
		printf "%s-%d|{\"specversion\":\"1.0\",\"id\":\"ev-%d\",\"source\":\"/promo\",\"type\":\"%s\",\"time\":\"2026-11-28T09:00:00Z\",\"companyid\":\"%s\",\"data\":{\"seq\":%d,\"pad\":\"%s\"}}\n", c, i, i, t, c, i, pad
	}
}' >"$T/events.in"
produce_lines "$T/events.in"
info "backlog: $(wc -c <"$T/events.in") bytes"
rm -f "$T/events.in"

info "draining with receivers that answer after 2 s"
t0=$(date +%s)
start_service drain
# Samples every 0.5 s until the drain is over: deliveries in flight and
# resident memory.
(
	while kill -0 "$SVC_PID" 2>/dev/null; do
		f=$(curl -s "$API/metrics" | awk '$1 == "promo_webhooks_deliveries_in_flight" { print $2 }')
		r=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$SVC_PID/status" 2>/dev/null)
		echo "$(date +%s) ${f:-?} ${r:-?}" >>"$T/samples"
		sleep 0.5
	done
) &
PIDS="$PIDS $!"

# total_at_least N: the receivers recorded at least N requests in all.
total_at_least() {
	[ "$(cat "$T"/r*.jsonl | wc -l)" -ge "$1" ]
}
wait_for 150 "$N deliveries" total_at_least $N
wait_for 60 "all offsets of $GROUP committed" all_committed
t1=$(date +%s)
hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$SVC_PID/status")
max_flight=$(awk '$2 != "?" && $2 + 0 > m { m = $2 + 0 } END { print m + 0 }' "$T/samples")
max_rss=$(awk '$3 != "?" && $3 + 0 > m { m = $3 + 0 } END { print m + 0 }' "$T/samples")
info "drained in $((t1 - t0)) s; peak RSS (VmHWM) $hwm KiB, sampled max $max_rss KiB; max in flight sampled $max_flight"

# VmHWM is the kernel's peak of VmRSS; it is updated lazily, so a sample
# can be a little above it: the larger of the two counts.
peak=$hwm
[ "$max_rss" -le "$peak" ] || peak=$max_rss
[ "$peak" -lt "$MEM_BOUND_KIB" ] ||
	fail "peak resident memory $peak KiB, above the bound $MEM_BOUND_KIB KiB (samples: $T/samples)"
[ "$max_flight" -le "$MAX_IN_FLIGHT" ] || fail "$max_flight deliveries in flight, above the bound $MAX_IN_FLIGHT"
# With 2 s per delivery the intake outruns the receivers at once: the bound
# must have been reached, else nothing was tested.
[ "$max_flight" -ge $((MAX_IN_FLIGHT * 3 / 4)) ] ||
	fail "at most $max_flight deliveries in flight; the bound $MAX_IN_FLIGHT was never approached"

cat "$T"/r*.jsonl | grep -o '"webhook-id":"msg_[0-9a-f]*"' | sort -u >"$T/ids"
distinct=$(wc -l <"$T/ids")
total=$(cat "$T"/r*.jsonl | wc -l)
info "deliveries: $total, distinct webhook-ids: $distinct"
[ "$distinct" -eq "$N" ] || fail "distinct webhook-ids = $distinct, want $N"
i=1
while [ "$i" -le $HOOKS ]; do
	d=$(grep -o '"webhook-id":"msg_[0-9a-f]*"' "$T/r$i.jsonl" | sort -u | wc -l)
	[ "$d" -eq $((N / HOOKS)) ] || fail "webhook $i got $d distinct events, want $((N / HOOKS))"
	i=$((i + 1))
done
stop_service
# The receivers' records are large; a passing run does not need them.
rm -f "$T"/r*.jsonl "$T/ids"
echo "PASS"
