#!/bin/sh
# SIGTERM during a steady stream (issue 6, contract section 8).
# A background producer publishes 10 events every 0.2 s for about 10 s; each
# event goes to 3 webhooks: /a and /b answer after 200 ms (finished within
# the grace), /slow, on a receiver of its own, after 8 s (longer than the
# grace: given up, and delivered again after the restart). SIGTERM lands in
# the middle of the stream with deliveries of both kinds in flight:
#   the service exits 0 within PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS + a margin
#   (measured), having given up the slow deliveries when the grace ran out;
#   a restarted service finishes the stream: every (event, webhook) pair is
#   delivered at least once (distinct webhook-ids = events x 3, and
#   events distinct ids per path) and the group's offsets reach the end.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.sigterm.$$
GROUP=e2e-sigterm-$$
REDIS_DB=9
TYPE=Product.ImportCompleted
BATCHES=50
BATCH=10
EVENTS=$((BATCHES * BATCH))
GRACE_MS=5000
# Leaving the group, the final commit and the producer flush after the
# grace: measured well under a second here; 4 s leaves room for a slow CI.
MARGIN_MS=4000

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver fast --rule /a=200,delay_ms=200 --rule /b=200,delay_ms=200
FAST_PORT=$RECV_PORT
FAST_LOG=$RECV_LOG
start_receiver slow --rule /slow=200,delay_ms=8000
SLOW_PORT=$RECV_PORT
SLOW_LOG=$RECV_LOG
service_env
export PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS=$GRACE_MS
start_service first
create_webhook acme $TYPE "http://127.0.0.1:$FAST_PORT/a"
create_webhook acme $TYPE "http://127.0.0.1:$FAST_PORT/b"
create_webhook acme $TYPE "http://127.0.0.1:$SLOW_PORT/slow"
wait_for 5 "the registry cache to hold 3 webhooks" metric_is promo_webhooks_registry_webhooks 3

# lines_at_least FILE N: FILE has at least N lines.
lines_at_least() {
	[ "$(wc -l <"$1")" -ge "$2" ]
}

info "a steady stream: $BATCHES batches of $BATCH events, one every 0.2 s"
(
	b=1
	while [ "$b" -le "$BATCHES" ]; do
		awk -v b="$b" -v n=$BATCH -v t=$TYPE 'BEGIN { for (i = 1; i <= n; i++)
			printf "acme-%d-%d|{\"specversion\":\"1.0\",\"id\":\"ev-%d-%d\",\"source\":\"/promo\",\"type\":\"%s\",\"time\":\"2026-11-28T09:00:00Z\",\"companyid\":\"acme\",\"data\":{\"batch\":%d,\"seq\":%d}}\n", b, i, b, i, t, b, i }' |
			kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -K '|'
		b=$((b + 1))
		sleep 0.2
	done
) &
PROD_PID=$!
PIDS="$PIDS $PROD_PID"

wait_for 60 "300 deliveries at the fast receiver" lines_at_least "$FAST_LOG" 300
wait_for 10 "slow deliveries in flight" lines_at_least "$SLOW_LOG" 10
kill -0 "$PROD_PID" 2>/dev/null || fail "the stream ended before SIGTERM; nothing was tested"

info "SIGTERM in the middle of the stream"
t0=$(date +%s%N)
kill -TERM "$SVC_PID"
rc=0
wait "$SVC_PID" || rc=$?
t1=$(date +%s%N)
elapsed_ms=$(((t1 - t0) / 1000000))
info "exit status $rc after $elapsed_ms ms (grace $GRACE_MS ms)"
[ "$rc" -eq 0 ] || fail "service exited with $rc after SIGTERM (log: $SVC_LOG)"
[ "$elapsed_ms" -le $((GRACE_MS + MARGIN_MS)) ] ||
	fail "shutdown took $elapsed_ms ms, more than the grace $GRACE_MS ms + $MARGIN_MS ms"
grep -q '"draining in-flight deliveries"' "$SVC_LOG" || fail "no drain logged at SIGTERM"
grep '"draining in-flight deliveries"' "$SVC_LOG" | jq -e '(.pending | tonumber) > 0' >/dev/null ||
	fail "no delivery was in flight at SIGTERM; nothing was tested: $(grep '"draining in-flight deliveries"' "$SVC_LOG")"
grep '"shutdown grace period over, giving up in-flight deliveries"' "$SVC_LOG" |
	jq -e '(.pending | tonumber) > 0' >/dev/null ||
	fail "the 8 s deliveries were not given up when the grace ran out"
grep -q '"leaving the consumer group"' "$SVC_LOG" || fail "the service did not leave the group"
grep -q '"promo-webhooks stopped"' "$SVC_LOG" || fail "no orderly stop logged"
before_fast=$(wc -l <"$FAST_LOG")
before_slow=$(wc -l <"$SLOW_LOG")
info "before the restart: $before_fast requests at /a and /b, $before_slow at /slow"
[ "$before_slow" -lt "$EVENTS" ] || fail "every slow delivery was made before SIGTERM; nothing was tested"

info "restarting (the slow receiver now answers at once)"
set_rule "$SLOW_PORT" /slow 200 0
start_service second
wait "$PROD_PID" || fail "the producer loop failed"
wait_for 120 "all offsets of $GROUP committed" all_committed

jq -r '.headers["webhook-id"]' "$FAST_LOG" "$SLOW_LOG" | sort -u >"$T/ids"
distinct=$(wc -l <"$T/ids")
total=$(cat "$FAST_LOG" "$SLOW_LOG" | wc -l)
info "deliveries: $total, distinct webhook-ids: $distinct, want $((EVENTS * 3))"
[ "$distinct" -eq $((EVENTS * 3)) ] || fail "distinct webhook-ids = $distinct, want $((EVENTS * 3))"
for p in /a /b /slow; do
	d=$(jq -r --arg p $p 'select(.path == $p) | .headers["webhook-id"]' "$FAST_LOG" "$SLOW_LOG" | sort -u | wc -l)
	[ "$d" -eq "$EVENTS" ] || fail "$p got $d distinct events, want $EVENTS"
done
stop_service
echo "PASS"
