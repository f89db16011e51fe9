#!/bin/sh
# Hostile input from Kafka, end to end: an event type built to inject keys
# into the log line (structured "type" and binary "ce_type"), a ce_id header
# that is not UTF-8, and data with a lone surrogate escape. Every log line
# of the service parses as JSON; each invalid event makes exactly one
# dead-letter log line with exactly the expected keys and its reason intact;
# the header event is dead-lettered; the surrogate arrives as U+FFFD.
# Then a target with a password, stored before user info was refused: it
# is delivered as stored, and the password shows in no response, notice,
# log line or metric.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.hostile.$$
GROUP=e2e-hostile-$$
REDIS_DB=7

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:1" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver hooks
service_env
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=1
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
start_service svc
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/import"

JSON_TYPE='Bar","level":"error","offset":"998'
TEXT_TYPE='Foo" level="debug" offset="999'
NL_TYPE='Baz
{"level":"error","msg":"forged"}'

info "producing hostile events"
jq -cn --arg t "$TEXT_TYPE" '{specversion: "1.0", id: "h1", source: "/s", type: $t,
	time: "2026-11-28T09:00:00Z", companyid: "acme", data: {}}' |
	kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -k h1
jq -cn --arg t "$NL_TYPE" '{specversion: "1.0", id: "h2", source: "/s", type: $t,
	time: "2026-11-28T09:00:00Z", companyid: "acme", data: {}}' |
	kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -k h2
echo '{"rows":1}' | kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -k h3 \
	-H ce_specversion=1.0 -H ce_id=h3 -H ce_source=/s -H "ce_type=$JSON_TYPE" \
	-H ce_time=2026-11-28T09:00:00Z -H ce_companyid=acme
echo '{"rows":1}' | kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -k h4 \
	-H ce_specversion=1.0 -H "ce_id=$(printf 'h4-\377\376"')" -H ce_source=/s \
	-H ce_type=Product.ImportCompleted -H ce_time=2026-11-28T09:00:00Z -H ce_companyid=acme
printf '%s\n' 'ok|{"specversion":"1.0","id":"h5","source":"/s","type":"Product.ImportCompleted","time":"2026-11-28T09:00:00Z","companyid":"acme","data":{"name":"\ud800x","pair":"\ud83d\ude00"}}' >"$T/ok.in"
produce_lines "$T/ok.in"

wait_for 60 "all offsets of $GROUP committed" all_committed
wait_for 10 "the valid event delivered" recorded_at_least /import 1
wait_for 10 "four dead letters" topic_has "$TOPIC.dead-letter" 4

info "checking the log lines"
# Every line of the log is one JSON object.
while IFS= read -r line; do
	printf '%s\n' "$line" | jq -e 'type == "object"' >/dev/null 2>&1 ||
		fail "log line is not a JSON object: $line"
done <"$SVC_LOG"
grep '"invalid event, dead-lettering"' "$SVC_LOG" >"$T/dl.log" || true
[ "$(wc -l <"$T/dl.log")" -eq 4 ] || fail "want 4 dead-letter log lines, got $(wc -l <"$T/dl.log")"
while IFS= read -r line; do
	printf '%s\n' "$line" | jq -e --arg t "$TOPIC" '
		(keys == ["level", "msg", "offset", "partition", "reason", "topic", "ts"])
		and .level == "warn" and .topic == $t and .partition == 0
		and (.offset | type) == "number"' >/dev/null ||
		fail "dead-letter log line has other keys or values: $line"
done <"$T/dl.log"
# The reasons carry the hostile text as data (event.c makes control bytes
# '?'; the quotes stay and are escaped by the logger).
jq -r .reason "$T/dl.log" >"$T/reasons"
grep -qxF "unknown event type: $TEXT_TYPE" "$T/reasons" || fail "the logfmt-style type is not in a reason"
grep -qxF "unknown event type: $JSON_TYPE" "$T/reasons" || fail "the JSON-style type is not in a reason"
grep -qxF 'unknown event type: Baz?{"level":"error","msg":"forged"}' "$T/reasons" ||
	fail "the type with a newline is not in a reason"
grep -qxF 'header is not valid UTF-8: ce_id' "$T/reasons" || fail "the non-UTF-8 ce_id was not dead-lettered"
[ "$(jq -r .offset "$T/dl.log" | sort -u | tr '\n' ' ')" = "0 1 2 3 " ] ||
	fail "dead-letter log lines do not carry offsets 0-3"
grep -q '"msg":"forged"' "$SVC_LOG" && fail "a forged log record reached the log"

info "checking the dead-letter topic"
kcat -C -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC.dead-letter" -e -J >"$T/dlq.jsonl"
[ "$(wc -l <"$T/dlq.jsonl")" -eq 4 ] || fail "want 4 dead letters, got $(wc -l <"$T/dlq.jsonl")"
[ "$(jq -r .key "$T/dlq.jsonl" | sort | tr '\n' ' ')" = "h1 h2 h3 h4 " ] ||
	fail "the dead letters are not h1-h4"

info "checking the delivery of the lone surrogate"
[ "$(recorded /import)" -eq 1 ] || fail "want 1 delivery, got $(recorded /import)"
jq -e '(.body | fromjson | .data) == {"name": "\ufffdx", "pair": "\ud83d\ude00"}' "$RECV_LOG" >/dev/null ||
	fail "the lone surrogate was not delivered as U+FFFD: $(cat "$RECV_LOG")"

info "a stored target with a password"
set_email acme ops@acme.example
set_rule "$RECV_PORT" /legacy 500
create_webhook acme Promotion.Created "http://127.0.0.1:$RECV_PORT/legacy" false
LEGACY=$HOOK_ID
api PATCH "/v1/companies/acme/webhooks/$LEGACY" '{"target":"http://legacy:hunter2@127.0.0.1:1/legacy"}'
[ "$HTTP_STATUS" = 400 ] || fail "user info in a PATCHed target: HTTP $HTTP_STATUS, want 400"
jq -e '.error.field == "target" and (.error.message | test("signing secret"))' "$T/resp" >/dev/null ||
	fail "the refusal does not name the field and the secret: $(cat "$T/resp")"
# As if written by an earlier version: straight into the stored document.
redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" EVAL "
	local d = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1]))
	d.target = ARGV[2]
	redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))
	return redis.call('INCR', KEYS[2])" 2 '{pw}:webhooks' '{pw}:version' "$LEGACY" \
	"http://legacy:hunter2@127.0.0.1:$RECV_PORT/legacy" >/dev/null
api PATCH "/v1/companies/acme/webhooks/$LEGACY" '{"enabled":true}'
[ "$HTTP_STATUS" = 200 ] || fail "enabling the legacy webhook: HTTP $HTTP_STATUS $(cat "$T/resp")"
jq -e --arg t "http://***@127.0.0.1:$RECV_PORT/legacy" '.target == $t' "$T/resp" >/dev/null ||
	fail "the legacy target is not shown redacted: $(cat "$T/resp")"
# Until the registry has it, an event matches nothing: produce one per poll.
n=0
legacy_delivered() {
	n=$((n + 1))
	event_line acme Promotion.Created "legacy-$n" '{"promotionId":"P-1"}' >"$T/legacy.in"
	produce_lines "$T/legacy.in"
	[ "$(recorded /legacy)" -ge 1 ]
}
wait_for 30 "a delivery to the legacy target" legacy_delivered
# Delivered as stored: curl sent the user info as Basic credentials.
jq -e 'select(.path == "/legacy") | .headers.authorization == "Basic bGVnYWN5Omh1bnRlcjI="' "$RECV_LOG" >/dev/null ||
	fail "the legacy target was not delivered with its credentials"
wait_for 30 "the disable notice" topic_has "$TOPIC.email" 1 "$LEGACY"
wait_for 60 "all offsets of $GROUP committed" all_committed
email_notices >"$T/notices.jsonl"
jq -e --arg t "http://***@127.0.0.1:$RECV_PORT/legacy" '.payload | fromjson |
	.target == $t and (.subject | endswith(" -> " + $t))' "$T/notices.jsonl" >/dev/null ||
	fail "the notice does not show the target redacted: $(cat "$T/notices.jsonl")"
api GET "/v1/companies/acme/webhooks/$LEGACY/attempts"
cp "$T/resp" "$T/attempts.json"
api GET "/v1/companies/acme/webhooks"
cp "$T/resp" "$T/list.json"
curl -s "$API/metrics" >"$T/metrics.txt"
for f in "$T/notices.jsonl" "$T/attempts.json" "$T/list.json" "$T/metrics.txt" "$SVC_LOG"; do
	if grep -q hunter2 "$f"; then
		fail "the password shows in $(basename "$f")"
	fi
done
jq -e '.items | length >= 1' "$T/attempts.json" >/dev/null || fail "no attempt logged for the legacy target"

stop_service
if grep -q hunter2 "$SVC_LOG"; then
	fail "the password shows in the log"
fi
echo "PASS"
