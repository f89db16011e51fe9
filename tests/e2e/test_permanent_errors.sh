#!/bin/sh
# Permanent errors never stall a partition (issue 12 part 1), on real Kafka:
#
# 1. An invalid message of about 1 MB (the broker takes it, the producer's
#    message.max.bytes refuses a copy) is copied to the dead-letter topic
#    truncated: its key and headers, the first 64 KiB of its value,
#    x-dead-letter-reason saying so, x-original-size; the next event is
#    delivered and every offset committed; one error line; the counter.
# 2. A dead-letter topic that does not exist: /readyz answers 503 naming
#    it; an invalid message (a ~1 MB one and a small one) cannot be copied
#    at all, is logged at error level and counted, and the partition moves
#    on (offsets committed, the event behind them delivered).
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.permanent.$$
GROUP=e2e-permanent-$$
REDIS_DB=11
BIG=1040000

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:1" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
start_service svc1
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/acme"

# big_invalid KEY: a ~1 MB message that is not an event, with a header.
big_invalid() {
	head -c "$BIG" /dev/zero | tr '\0' 'x' >"$T/big.value"
	kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -k "$1" -H "trace=t-$1" \
		-X message.max.bytes=2000000 "$T/big.value" ||
		fail "kcat could not produce the ~1 MB message"
}

# permanent KIND: promo_webhooks_permanent_errors_total{kind=KIND}.
permanent() {
	curl -s "$API/metrics" |
		awk -v k="promo_webhooks_permanent_errors_total{kind=\"$1\"}" '$1 == k { print $2 }'
}
permanent_is() {
	[ "$(permanent "$1")" = "$2" ]
}
delivered() {
	[ "$(jq -c --arg id "$1" 'select(.headers["webhook-id"] != null and (.body | tostring | contains($id)))' "$RECV_LOG" | wc -l)" -ge 1 ]
}

info "part 1: a ~1 MB invalid message, then a valid event"
big_invalid big1
event_line acme Product.ImportCompleted after-big1 >"$T/ev1.in"
produce_lines "$T/ev1.in"
wait_for 60 "the event behind the big message delivered" delivered after-big1
wait_for 60 "every offset committed" all_committed
wait_for 30 "the truncated copy on the dead-letter topic" topic_has "$TOPIC.dead-letter" 1 big1
kcat -C -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC.dead-letter" -e -J |
	jq -c '.headers = ((.headers // []) as $h | [range(0; $h | length; 2) | {($h[.]): $h[. + 1]}] | add)' |
	jq -c 'select(.key == "big1")' >"$T/dlq1.jsonl"
[ "$(wc -l <"$T/dlq1.jsonl")" -eq 1 ] || fail "want one copy of big1, got $(wc -l <"$T/dlq1.jsonl")"
jq -e --arg t "$TOPIC" --arg size "$BIG" '
	.headers.trace == "t-big1"
	and .headers["x-original-size"] == $size
	and .headers["x-original-topic"] == $t
	and .headers["x-original-offset"] == "0"
	and (.headers["x-dead-letter-reason"] | test("too large to copy"))
	and (.headers["x-dead-letter-reason"] | test("truncated to 65536 bytes"))
	and (.payload | length) == 65536' "$T/dlq1.jsonl" >/dev/null ||
	fail "the copy of big1 is not the truncated copy: $(cut -c1-600 "$T/dlq1.jsonl")"
permanent_is dead_letter_truncated 1 || fail "dead_letter_truncated is $(permanent dead_letter_truncated), want 1"
permanent_is dead_letter_not_copied 0 || fail "dead_letter_not_copied is $(permanent dead_letter_not_copied), want 0"
[ "$(metric promo_webhooks_events_dead_lettered_total)" = 1 ] || fail "events_dead_lettered_total is not 1"
[ "$(metric promo_webhooks_kafka_errors_total)" -ge 1 ] || fail "kafka_errors_total did not count the refused copy"
n=$(jq -c 'select(.level == "error" and (.msg | test("too large for the dead-letter topic, copied with its value truncated")))' "$SVC_LOG" | wc -l)
[ "$n" -eq 1 ] || fail "want one error line for the truncated copy, got $n"
n=$(grep -c '"level":"error"' "$SVC_LOG" || true)
[ "$n" -eq 1 ] || fail "want exactly one error-level line in part 1, got $n"
ready_ok || fail "/readyz not 200 with every output topic present"
stop_service

info "part 2: the dead-letter topic does not exist"
export PROMO_WEBHOOKS_DEAD_LETTER_TOPIC="$TOPIC.no-such-dlq"
# librdkafka gives up on an unknown topic after this (30 s by default).
export PROMO_WEBHOOKS_RDKAFKA_TOPIC_METADATA_PROPAGATION_MAX_MS=2000
: >"$T/svc2.log"
SVC_LOG=$T/svc2.log
"$PW_BIN" 2>>"$SVC_LOG" &
SVC_PID=$!
PIDS="$PIDS $SVC_PID"
wait_for 20 "service svc2 to listen" grep -q '"promo-webhooks started"' "$SVC_LOG"
API=http://127.0.0.1:$(grep '"promo-webhooks started"' "$SVC_LOG" | tail -n 1 | jq -r .http_port)
readyz_names_missing() {
	code=$(curl -s -o "$T/readyz" -w '%{http_code}' "$API/readyz")
	[ "$code" = 503 ] &&
		jq -e --arg t "$TOPIC.no-such-dlq" '.unwritable_topics | map(.topic) | index($t) != null' "$T/readyz" >/dev/null
}
wait_for 30 "/readyz 503 naming the missing dead-letter topic" readyz_names_missing
jq -e '.redis == true and .cache == true' "$T/readyz" >/dev/null ||
	fail "/readyz blames something else: $(cat "$T/readyz")"
curl -s "$API/metrics" | grep -q "^promo_webhooks_output_topic_unwritable{topic=\"$TOPIC.no-such-dlq\"} 1\$" ||
	fail "output_topic_unwritable does not name the missing topic"

big_invalid big2
printf 'small2|not an event at all\n' >"$T/ev2.in"
event_line acme Product.ImportCompleted after-missing >>"$T/ev2.in"
produce_lines "$T/ev2.in"
wait_for 60 "the event behind the uncopyable messages delivered" delivered after-missing
wait_for 60 "every offset committed past the uncopyable messages" all_committed
wait_for 10 "two uncopyable messages counted" permanent_is dead_letter_not_copied 2
permanent_is dead_letter_truncated 0 || fail "an uncopyable message was counted as truncated"
n=$(jq -c 'select(.level == "error" and (.msg | test("not copied to the dead-letter topic")))' "$SVC_LOG" | wc -l)
[ "$n" -eq 2 ] || fail "want two error lines for the uncopyable messages, got $n"
n=$(grep -c '"level":"error"' "$SVC_LOG" || true)
[ "$n" -eq 2 ] || fail "want exactly two error-level lines in part 2 (one per message), got $n"
jq -c 'select(.level == "error" and (.msg | test("not copied")))' "$SVC_LOG" |
	jq -e -s 'map(.offset | tostring) | sort == ["2", "3"]' >/dev/null ||
	fail "the error lines do not name the skipped offsets: $(grep 'not copied' "$SVC_LOG")"
n=$(grep -c 'dead-letter produce failed, retrying' "$SVC_LOG" || true)
[ "$n" -eq 0 ] || fail "a permanent error was retried $n times"
readyz_names_missing || fail "/readyz no longer names the missing topic"
stop_service
echo "permanent errors: ok"
