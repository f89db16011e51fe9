#!/bin/sh
# The admin API under hostile clients: oversized, chunked and malformed
# requests are refused in the contract's JSON shape before their body is
# read; then 300 slow unauthenticated clients (tests/e2e/slow_clients.py:
# idle, trickling a head, trickling a body) hold the port while events
# flow: every event is delivered, every authorised call is answered within
# its 5 s deadline, and the service never holds more than its 128 admin
# connections.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.guard.$$
GROUP=e2e-guard-$$
REDIS_DB=8
HERE=$(dirname "$0")
N_EVENTS=300

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:2" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver hooks
service_env
start_service svc
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/import"
PORT=${API##*:}

info "refusals in the contract's shape"
python3 "$HERE/slow_clients.py" probe "$PORT" >"$T/probe.jsonl"
check_case() { # CASE STATUS CODE
	line=$(jq -c --arg c "$1" 'select(.case == $c)' "$T/probe.jsonl")
	printf '%s\n' "$line" | jq -e --argjson s "$2" --arg code "$3" '
		.status == $s and .ms < 3000 and
		($code == "" or ((.body | fromjson) as $b |
			$b.error.code == $code and ($b.error.message | length) > 0
			and ($b | keys) == ["error"]))' >/dev/null ||
		fail "$1: want $2 $3 within 3 s, got $line"
}
check_case content_length_over 413 payload_too_large
check_case content_length_huge 413 payload_too_large
check_case chunked 411 length_required
check_case head_over 431 headers_too_large
# A body on a method that takes none is dropped; the request is answered
# as without it.
check_case body_on_get 200 ""
check_case bad_length 400 bad_request
check_case healthz 200 ""
# curl sends the whole body (it does not wait for 100-continue): the
# answer still arrives, JSON, not libevent's HTML page.
head -c 65537 /dev/zero | tr '\0' ' ' >"$T/big"
code=$(curl -s -o "$T/resp" -w '%{http_code} %{content_type}' -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/json' --data-binary @"$T/big" "$API/v1/companies/acme/webhooks")
[ "$code" = "413 application/json" ] || fail "oversized body: $code $(head -c 200 "$T/resp")"
jq -e '.error.code == "payload_too_large"' "$T/resp" >/dev/null || fail "oversized body: $(cat "$T/resp")"
metric_at_least() {
	[ "$(curl -s -m 5 "$API/metrics" | awk -v n="$1" '$1 == n { print $2 }')" -ge "$2" ]
}
metric_at_least promo_webhooks_admin_requests_refused_total 6 || fail "refusals not counted"

info "300 slow clients"
python3 "$HERE/slow_clients.py" flood "$PORT" 300 40 >"$T/flood.json" 2>"$T/flood.err" &
FLOOD=$!
PIDS="$PIDS $FLOOD"
conns() {
	curl -s -m 5 "$API/metrics" | awk '$1 == "promo_webhooks_admin_connections" { print $2 }'
}
wait_for 20 "the admin port full of slow clients" sh -c "[ \"\$(curl -s -m 5 $API/metrics | awk '\$1 == \"promo_webhooks_admin_connections\" { print \$2 }')\" -ge 120 ]"

info "events flow and authorised calls are answered meanwhile"
produce_events acme Product.ImportCompleted flood $N_EVENTS
max_ms=0
i=0
while [ $i -lt 20 ]; do
	out=$(curl -s -m 5 -o "$T/call" -w '%{http_code} %{time_total}' \
		-H "Authorization: Bearer $TOKEN" "$API/v1/companies/acme/webhooks") || out="timeout"
	set -- $out
	[ "$1" = 200 ] || fail "authorised call $i during the flood: $out"
	jq -e '.items | length == 1' "$T/call" >/dev/null || fail "authorised call $i: $(cat "$T/call")"
	ms=$(awk -v t="$2" 'BEGIN { printf "%d", t * 1000 }')
	[ "$ms" -gt "$max_ms" ] && max_ms=$ms
	c=$(conns)
	[ "$c" -le 132 ] || fail "the service holds $c admin connections, limit 128"
	i=$((i + 1))
done
info "slowest authorised call: ${max_ms} ms"
wait_for 60 "all $N_EVENTS events delivered" recorded_at_least /import $N_EVENTS
kill -0 "$FLOOD" 2>/dev/null || fail "the flood ended before the checks did"
closed=$(curl -s "$API/metrics" | awk '$1 ~ /^promo_webhooks_admin_connections_closed_total/ { s += $2 } END { print s + 0 }')
[ "$closed" -gt 0 ] || fail "no slow connection was closed"

wait "$FLOOD" || fail "the flood client failed: $(cat "$T/flood.err")"
info "flood: $(cat "$T/flood.json")"
jq -e '.closed_by_server > 0' "$T/flood.json" >/dev/null || fail "the server closed no slow client"
wait_for 30 "all offsets of $GROUP committed" all_committed
[ "$(recorded /import)" -eq $N_EVENTS ] || fail "want $N_EVENTS deliveries, got $(recorded /import)"

stop_service
echo "PASS"
