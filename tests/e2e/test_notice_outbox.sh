#!/bin/sh
# A notice is never lost (contract section 5):
#   the process dies right after the disable step, before the notice is
#   published (test fault point): after a restart it is published exactly
#   once; Kafka unavailable (the broker frozen with SIGSTOP) while a notice
#   is due: it is published once Kafka is back.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.outbox.$$
GROUP=e2e-outbox-$$
REDIS_DB=6
TYPE=Promotion.Updated

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
export PROMO_WEBHOOKS_TEST_FAULT=exit-after-disable
start_service faulty
set_email acme ops@acme.example
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/k"
W=$HOOK_ID
set_rule "$RECV_PORT" /k 500
wait_for 5 "the registry cache" metric_is promo_webhooks_registry_webhooks 1

info "killed right after the disable step"
: >"$T/events.in"
for i in 1 2 3; do
	event_line acme $TYPE "k-$i" "{\"promotionId\":\"P-$i\"}" >>"$T/events.in"
done
produce_lines "$T/events.in"
rc=0
wait "$SVC_PID" || rc=$?
[ "$rc" -eq 137 ] || fail "the service exited $rc, want 137 from the fault point"
grep -q '"test fault: exiting right after the disable"' "$T/faulty.log" || fail "the fault point was not reached"
[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard {pw}:outbox)" = 1 ] || fail "the notice is not in the outbox"
[ "$(notices_for "$W")" -eq 0 ] || fail "the notice was published before the fault point"

unset PROMO_WEBHOOKS_TEST_FAULT
start_service restarted
wait_for 30 "the notice published after the restart" topic_has "$TOPIC.email" 1
wait_for 10 "the outbox empty" metric_is promo_webhooks_notices_pending 0
[ "$(notices_for "$W")" -eq 1 ] || fail "want exactly 1 notice, got $(notices_for "$W")"

info "Kafka unavailable while a notice is due"
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/f"
W2=$HOOK_ID
# Slow failures: the broker is frozen while they are in flight.
set_rule "$RECV_PORT" /f 500 3000
wait_for 5 "the registry cache" metric_is promo_webhooks_registry_webhooks_enabled 1
: >"$T/events.in"
for i in 1 2 3; do
	event_line acme $TYPE "f-$i" "{\"promotionId\":\"Q-$i\"}" >>"$T/events.in"
done
produce_lines "$T/events.in"
wait_for 30 "3 attempts in flight at f" recorded_at_least /f 3
kpid=$(cat "$PW_TEST_STATE/kafka/kafka.pid")
kill -STOP "$kpid"
# From here on the broker answers nothing until SIGCONT.
resume_kafka() { kill -CONT "$kpid" 2>/dev/null || true; }
trap 'resume_kafka; cleanup' EXIT
wait_for 30 "f disabled while Kafka is frozen" webhook_disabled acme "$W2"
[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard {pw}:outbox)" = 1 ] || fail "the notice is not in the outbox"
resume_kafka
info "Kafka resumed"
wait_for 120 "the notice published after Kafka is back" topic_has "$TOPIC.email" 1 "$W2"
wait_for 30 "the outbox empty" zcard_is {pw}:outbox 0
[ "$(notices_for "$W2")" -eq 1 ] || fail "want exactly 1 notice for f, got $(notices_for "$W2")"
stop_service
echo "PASS"
