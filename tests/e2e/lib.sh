# lib.sh: shared steps of the end-to-end tests (sourced, POSIX sh).
#
# The CTest fixtures have started Kafka and Redis and exported
# KAFKA_BOOTSTRAP and REDIS_PORT; CTest sets PW_BIN, PW_RECEIVER,
# PW_KAFKA_ADMIN, PW_SCRIPTS and PW_TEST_TMP. Every wait below polls a
# condition with a deadline; none sleeps in place of a condition.

set -eu

: "${KAFKA_BOOTSTRAP:?the kafka fixture did not run}"
: "${REDIS_PORT:?the redis fixture did not run}"
: "${PW_BIN:?}" "${PW_RECEIVER:?}" "${PW_KAFKA_ADMIN:?}" "${PW_TEST_TMP:?}"

TOKEN=test-admin-token
rm -rf "$PW_TEST_TMP"
mkdir -p "$PW_TEST_TMP"
T=$PW_TEST_TMP
PIDS=""

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

info() {
	echo "--- $*" >&2
}

cleanup() {
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $PIDS; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
# A signal ends the test (the EXIT trap then cleans up).
trap 'exit 1' INT TERM

. "${PW_SCRIPTS:?}/wait.sh"

# create_topics NAME:PARTITIONS...
create_topics() {
	"$PW_KAFKA_ADMIN" -b "$KAFKA_BOOTSTRAP" create "$@" >/dev/null
}

# start_receiver NAME [RECEIVER ARGS...]: starts pw-receiver; sets
# RECV_PORT, RECV_LOG.
start_receiver() {
	name=$1
	shift
	RECV_LOG=$T/$name.jsonl
	: >"$RECV_LOG"
	rm -f "$T/$name.port"
	"$PW_RECEIVER" --listen 127.0.0.1:0 --record "$RECV_LOG" \
		--port-file "$T/$name.port" "$@" 2>"$T/$name.err" &
	PIDS="$PIDS $!"
	wait_for 10 "receiver $name listening" test -s "$T/$name.port"
	RECV_PORT=$(cat "$T/$name.port")
}

# service_env: the environment every service instance of a test shares;
# tests set TOPIC, GROUP, REDIS_DB first.
service_env() {
	export PROMO_WEBHOOKS_KAFKA_BROKERS="$KAFKA_BOOTSTRAP"
	export PROMO_WEBHOOKS_KAFKA_GROUP="$GROUP"
	export PROMO_WEBHOOKS_EVENT_TOPICS="$TOPIC"
	export PROMO_WEBHOOKS_DEAD_LETTER_TOPIC="$TOPIC.dead-letter"
	export PROMO_WEBHOOKS_EMAIL_TOPIC="$TOPIC.email"
	export PROMO_WEBHOOKS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/$REDIS_DB"
	export PROMO_WEBHOOKS_HTTP_LISTEN=127.0.0.1:0
	export PROMO_WEBHOOKS_ADMIN_TOKEN=$TOKEN
	export PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1
	export PROMO_WEBHOOKS_LOG_LEVEL=info
	# A killed member is evicted after this, not after the 45 s default.
	export PROMO_WEBHOOKS_RDKAFKA_SESSION_TIMEOUT_MS=6000
}

# start_service NAME: starts one service instance; sets SVC_PID, API.
start_service() {
	SVC_LOG=$T/$1.log
	"$PW_BIN" 2>>"$SVC_LOG" &
	SVC_PID=$!
	PIDS="$PIDS $SVC_PID"
	wait_for 20 "service $1 to listen" grep -q '"promo-webhooks started"' "$SVC_LOG"
	port=$(grep '"promo-webhooks started"' "$SVC_LOG" | tail -n 1 | jq -r .http_port)
	API=http://127.0.0.1:$port
	wait_for 60 "service $1 ready" ready_ok
}

ready_ok() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/readyz")" = 200 ]
}

# api METHOD PATH [BODY]: calls the admin API; sets HTTP_STATUS and leaves
# the response body in $T/resp (no command substitution, so that the
# status survives in this shell).
api() {
	if [ $# -ge 3 ]; then
		HTTP_STATUS=$(curl -s -o "$T/resp" -w '%{http_code}' -X "$1" \
			-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
			--data-binary "$3" "$API$2")
	else
		HTTP_STATUS=$(curl -s -o "$T/resp" -w '%{http_code}' -X "$1" \
			-H "Authorization: Bearer $TOKEN" "$API$2")
	fi
}

# create_webhook COMPANY EVENT TARGET [ENABLED]: creates a webhook and sets
# HOOK_ID.
create_webhook() {
	enabled=${4:-true}
	body=$(jq -cn --arg e "$2" --arg t "$3" --argjson en "$enabled" \
		'{event: $e, target: $t, enabled: $en}')
	api POST "/v1/companies/$1/webhooks" "$body"
	[ "$HTTP_STATUS" = 201 ] || fail "create webhook $1 $2: HTTP $HTTP_STATUS $(cat "$T/resp")"
	HOOK_ID=$(jq -r .id "$T/resp")
}

# metric NAME: the value of an unlabelled metric of the running service.
metric() {
	curl -s "$API/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# produce_lines FILE: produces "key|value" lines to $TOPIC.
produce_lines() {
	kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -K '|' <"$1"
}

# all_committed: every partition of $TOPIC has its committed offset of
# $GROUP at the high watermark (every event has its outcome recorded).
all_committed() {
	"$PW_KAFKA_ADMIN" -b "$KAFKA_BOOTSTRAP" group-offsets "$GROUP" "$TOPIC" >"$T/offsets" 2>/dev/null || return 1
	[ -s "$T/offsets" ] || return 1
	awk '$3 != 0 && $2 != $3 { bad = 1 } END { exit bad }' "$T/offsets"
}

# recorded [PATH]: how many requests the receiver recorded (for PATH).
recorded() {
	if [ $# -ge 1 ]; then
		jq -c --arg p "$1" 'select(.path == $p)' "$RECV_LOG" | wc -l
	else
		wc -l <"$RECV_LOG"
	fi
}

# stop_service: SIGTERM and wait; fails the test unless the exit is 0.
stop_service() {
	kill -TERM "$SVC_PID"
	if ! wait "$SVC_PID"; then
		fail "service exited non-zero after SIGTERM (log: $SVC_LOG)"
	fi
}

# set_rule PORT PATH STATUS [DELAY_MS]: how the receiver on PORT answers PATH.
set_rule() {
	curl -sf -X PUT "http://127.0.0.1:$1/_control?path=$2&status=$3&delay_ms=${4:-0}" >/dev/null ||
		fail "cannot set receiver rule $2"
}

# event_line COMPANY TYPE ID [DATA]: one structured event as a "key|value"
# line for produce_lines.
event_line() {
	data=${4:-}
	[ -n "$data" ] || data="{\"importId\":\"$3\"}"
	printf '%s|{"specversion":"1.0","id":"%s","source":"/promo/test","type":"%s","time":"2026-11-28T09:00:00Z","companyid":"%s","data":%s}\n' \
		"$1" "$3" "$2" "$1" "$data"
}

# produce_events COMPANY TYPE PREFIX N: N events with ids PREFIX-1..N.
produce_events() {
	i=1
	: >"$T/produce.in"
	while [ "$i" -le "$4" ]; do
		event_line "$1" "$2" "$3-$i" >>"$T/produce.in"
		i=$((i + 1))
	done
	produce_lines "$T/produce.in"
}

# webhook_json COMPANY ID: the webhook as the API shows it.
webhook_json() {
	api GET "/v1/companies/$1/webhooks/$2"
	[ "$HTTP_STATUS" = 200 ] || fail "GET webhook $2: HTTP $HTTP_STATUS"
	cat "$T/resp"
}

# is_enabled COMPANY ID: succeeds when the webhook is enabled.
is_enabled() {
	webhook_json "$1" "$2" | jq -e '.enabled == true' >/dev/null
}

# email_notices: the messages on the email topic, one JSON envelope a line.
email_notices() {
	kcat -C -q -b "$KAFKA_BOOTSTRAP" -t "$PROMO_WEBHOOKS_EMAIL_TOPIC" -e -J 2>/dev/null
}

# notices_for ID: how many notices on the email topic have key ID.
notices_for() {
	email_notices | jq -c --arg k "$1" 'select(.key == $k)' | wc -l
}

# metric_is NAME VALUE: succeeds when the running service reports it.
metric_is() {
	[ "$(metric "$1")" = "$2" ]
}

# set_email COMPANY EMAIL: the company's notification email.
set_email() {
	api PUT "/v1/companies/$1/settings" "{\"webhookDisabledNotificationEmail\":\"$2\",\"webhookPayloadDataType\":\"Json\"}"
	[ "$HTTP_STATUS" = 200 ] || fail "PUT settings $1: HTTP $HTTP_STATUS $(cat "$T/resp")"
}

# recorded_at_least PATH N: the receiver recorded at least N requests for
# PATH (a function, for wait_for).
recorded_at_least() {
	[ "$(recorded "$1")" -ge "$2" ]
}

# webhook_disabled COMPANY ID: the webhook reads as disabled.
webhook_disabled() {
	webhook_json "$1" "$2" | jq -e '.enabled == false' >/dev/null
}

# topic_has TOPIC N [KEY]: the topic holds at least N messages (with KEY).
topic_has() {
	[ "$(kcat -C -q -b "$KAFKA_BOOTSTRAP" -t "$1" -e -J 2>/dev/null |
		jq -c --arg k "${3:-}" 'select($k == "" or .key == $k)' | wc -l)" -ge "$2" ]
}

# zcard_is KEY N: the Redis sorted set KEY (test db) has N members.
zcard_is() {
	[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard "$1")" = "$2" ]
}
